package hub

import (
	"encoding/json"
	"time"

	"github.com/ginws/ginws/wire"
)

// expiringLead is how long before its token expires a session is told:
// 60 s, or half the token's remaining lifetime when that is shorter.
const expiringLead = 60 * time.Second

// watchExpiry arms the session's expiry timer for p: first token.expiring,
// then the 4401 close. It is called with s.mu held.
func (s *Session) watchExpiry(p *Principal) {
	if p.Expires.IsZero() {
		if s.expiry != nil {
			s.expiry.Stop()
		}
		return
	}
	left := time.Until(p.Expires)
	notice := left - min(expiringLead, left/2)
	if s.expiry == nil {
		s.expiry = time.AfterFunc(notice, s.expiryTick)
	} else {
		s.expiry.Reset(notice)
	}
}

// expiryTick tells the client that its token expires soon, once, and closes
// the session with 4401 when it has.
func (s *Session) expiryTick() {
	s.mu.Lock()
	p := s.principal.Load()
	left := time.Until(p.Expires)
	if s.state == gone || p.Expires.IsZero() {
		s.mu.Unlock()
		return
	}
	if left <= 0 {
		s.mu.Unlock()
		s.closeWith(wire.CloseTokenExpired)
		return
	}
	s.expiry.Reset(left)
	s.mu.Unlock()
	notice, _ := encodeEvent("token.expiring", "", struct {
		In int64 `json:"in"`
	}{left.Milliseconds()})
	_ = s.out.enqueue(outgoing{data: notice})
}

// refresh handles the refresh request (PROTOCOL.md section 6): the token is
// checked as the upgrade's was, must name the same user, and then its
// roles, claims and expiry are the session's.
func (s *Session) refresh(c *Context, data []byte) (any, error) {
	var in struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(data, &in); err != nil || in.Token == "" {
		return nil, &Error{Code: wire.CodeUnauthorized, Message: `no token: refresh takes {"token":"..."}`}
	}
	cur := s.principal.Load()
	if cur.Refresh == nil {
		return nil, &Error{Code: wire.CodeUnauthorized, Message: "this server does not refresh tokens in-band: reconnect with a new token"}
	}
	p, err := cur.Refresh(c, in.Token)
	if err != nil {
		// The error may quote claims, never the token; the client only
		// needs to know that it did not pass.
		s.hub.log.Info("ginws: refresh refused", "session", s.id, "user", cur.UserID, "err", err)
		return nil, &Error{Code: wire.CodeUnauthorized, Message: "the token did not pass"}
	}
	if p.UserID != cur.UserID {
		return nil, &Error{Code: wire.CodeForbidden, Message: "the token names another user"}
	}
	p.Refresh = cur.Refresh
	s.mu.Lock()
	s.principal.Store(&p)
	s.watchExpiry(&p)
	s.mu.Unlock()
	var expires int64
	if !p.Expires.IsZero() {
		expires = p.Expires.UnixMilli()
	}
	return struct {
		Expires int64 `json:"expires"`
	}{expires}, nil
}
