package hub

import (
	"encoding/json"
	"time"

	"github.com/ginws/ginws/internal/logtext"
	"github.com/ginws/ginws/wire"
)

// expiringLead is how long before its token expires a session is told:
// 60 s, or half the token's remaining lifetime when that is shorter.
const expiringLead = 60 * time.Second

// watchExpiry arms the session's expiry timer for p: token.expiring once
// per expiry, then the 4401 close. Each arming has a timer of its own,
// bound to p: one that fires after a refresh replaced p does nothing. It is
// called with s.mu held.
func (s *Session) watchExpiry(p *Principal) {
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	if p.Expires.IsZero() || s.state == gone {
		return
	}
	left := time.Until(p.Expires)
	next := left // the notice went out for this expiry: the close is next
	if !s.noticed {
		next = left - min(expiringLead, left/2)
	}
	s.expiry = time.AfterFunc(next, func() { s.expiryTick(p) })
}

// expiryTick sends token.expiring, or closes the session with 4401 once the
// notice went out and the token expired.
func (s *Session) expiryTick(p *Principal) {
	s.mu.Lock()
	if s.state == gone || s.principal.Load() != p {
		s.mu.Unlock()
		return
	}
	left := time.Until(p.Expires)
	if s.noticed || left <= 0 {
		s.mu.Unlock()
		s.closeWith(wire.CloseTokenExpired)
		return
	}
	s.noticed = true
	s.watchExpiry(p)
	s.mu.Unlock()
	notice, _ := encodeEvent("token.expiring", "", struct {
		In int64 `json:"in"`
	}{left.Milliseconds()})
	_ = s.out.enqueue(outgoing{data: notice})
}

// refresh handles the refresh request (PROTOCOL.md section 6): the token is
// checked as the upgrade's was, must name the same user, and then its
// roles, claims and expiry are the session's. Tokens that do not pass
// count as invalid frames: MaxInvalidFrames in a row close the session
// with 1008, so a client cannot make the server verify signatures for it
// without end.
func (s *Session) refresh(c *Context, data []byte) (any, error) {
	var in struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(data, &in)
	cur := s.principal.Load()
	if s.refresher == nil {
		return nil, &Error{Code: wire.CodeUnauthorized, Message: "this server does not refresh tokens in-band: reconnect with a new token"}
	}
	p, err := s.refresher(c, in.Token)
	if err != nil {
		// The error may quote claims, never the token.
		s.hub.log.Info("ginws: refresh refused", "session", s.id, "user", cur.UserID, "err", logtext.Clip(err.Error()))
		if int(s.invalid.Add(1)) >= s.hub.opts.MaxInvalidFrames {
			s.closeWith(wire.ClosePolicy)
		}
		return nil, &Error{Code: wire.CodeUnauthorized, Message: "the token did not pass"}
	}
	if p.UserID != cur.UserID {
		return nil, &Error{Code: wire.CodeForbidden, Message: "the token names another user"}
	}
	s.mu.Lock()
	if s.state == gone {
		s.mu.Unlock()
		return nil, ErrSessionClosed
	}
	// A token with the same expiry (a provider that caches its token) is
	// not told again.
	s.noticed = s.noticed && p.Expires.Equal(cur.Expires)
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
