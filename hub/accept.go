package hub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/ginws/ginws/internal/deflate"
	"github.com/ginws/ginws/internal/sock"
	"github.com/ginws/ginws/wire"
)

// Accept takes over the request's connection for a WebSocket session of
// principal p and returns at once: the session runs on a goroutine of its
// own, so that net/http and Gin can free the request's buffers (some 10 KiB
// per connection) instead of keeping them for the connection's lifetime.
// done, if not nil, runs exactly once: when the session has ended and was
// cleaned up, or when Accept or the upgrade failed.
//
// Accept returns ErrHubClosed while the hub shuts down, ErrHubFull when the
// hub is at MaxSessions and ErrTooManySessions when the user is at
// MaxSessionsPerUser, before
// anything was written; after that the connection is the hub's, and a
// failed handshake is answered and logged by it.
//
// Accept does not check the Origin header or authenticate: mount the hub
// with middleware.New, which does both, or do them before calling Accept.
func (h *Hub) Accept(w http.ResponseWriter, r *http.Request, p Principal, done func()) error {
	return h.AcceptRefreshable(w, r, p, done, nil)
}

// AcceptRefreshable is Accept for a session that may refresh its token
// in-band: refresh checks the new tokens. Without one (Accept), refresh
// requests are refused and the session ends with 4401 at p.Expires.
func (h *Hub) AcceptRefreshable(w http.ResponseWriter, r *http.Request, p Principal, done func(), refresh Refresher) error {
	if done == nil {
		done = func() {}
	}
	release, err := h.reserve(r.Context(), p.UserID)
	if err != nil {
		done()
		return err
	}
	end := sync.OnceFunc(func() { release(); done() })
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		end()
		return fmt.Errorf("hub: take over the connection: %w", err)
	}
	setSendBuffer(conn, h.opts.SocketSendBuffer)
	hw := &hijacked{conn: conn, ws: sock.New(conn, h.opts.WriteTimeout, h.writers.active.add), brw: brw, header: http.Header{}}
	slim := handshake(r, h.opts.Compression.Enabled)
	if compressed(slim) {
		hw.ws.ReadThrough(func(c io.Reader) io.Reader {
			return deflate.NewReader(c, int(min(h.opts.MaxFrameBytes, deflate.MaxLimit)))
		})
	}
	go func() {
		// melody upgrades and then reads until the connection ends.
		if err := h.m.HandleRequestWithKeys(hw, slim, map[string]any{keyPrincipal: &p, keyRefresh: refresh, keyRelease: end}); err != nil {
			end()
			h.log.Debug("ginws: upgrade failed", "err", err)
		}
	}()
	return nil
}

// setSendBuffer bounds the kernel's send buffer of the connection (see
// Options.SocketSendBuffer); TLS connections are set on the connection under
// them.
func setSendBuffer(c net.Conn, n int) {
	if n <= 0 {
		return
	}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(interface{ SetWriteBuffer(int) error }); ok {
		_ = tc.SetWriteBuffer(n)
	}
}

// handshake copies what the upgrade reads from r. melody keeps the request
// for the session's lifetime: a copy without the other headers, the URL
// (which may hold an access_token), the bearer.<token> subprotocol entry and
// the body keeps less memory and no credentials.
//
// With compression on, the copy offers gorilla a bare permessage-deflate
// when the client made an offer the hub accepts (deflate.Negotiate), and
// nothing otherwise: gorilla accepts any offer without reading its
// parameters, and the hub and gorilla must agree on what was negotiated.
func handshake(r *http.Request, compression bool) *http.Request {
	h := make(http.Header, 6)
	for _, k := range []string{"Connection", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version", "Origin"} {
		if v, ok := r.Header[k]; ok {
			h[k] = v
		}
	}
	if compression && deflate.Negotiate(r.Header["Sec-Websocket-Extensions"]) {
		h["Sec-Websocket-Extensions"] = []string{"permessage-deflate"}
	}
	for _, p := range websocket.Subprotocols(r) {
		if p == wire.Subprotocol {
			h["Sec-Websocket-Protocol"] = []string{wire.Subprotocol}
		}
	}
	return &http.Request{Method: r.Method, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: h, Host: r.Host, RemoteAddr: r.RemoteAddr, URL: &url.URL{Path: r.URL.Path}}
}

// compressed reports whether the upgrade of handshake's copy negotiates
// permessage-deflate.
func compressed(slim *http.Request) bool {
	return slim.Header["Sec-Websocket-Extensions"] != nil
}

// hijacked is the ResponseWriter melody upgrades through once the handler
// has handed the connection over: Hijack returns it, and a refusal of the
// handshake is written to it as a plain HTTP response.
type hijacked struct {
	conn   net.Conn
	ws     *sock.Conn // what the upgrade takes over
	brw    *bufio.ReadWriter
	header http.Header
	status int
	taken  bool
}

func (w *hijacked) Header() http.Header { return w.header }

func (w *hijacked) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// Write answers a refused handshake and closes the connection.
func (w *hijacked) Write(b []byte) (int, error) {
	if w.taken {
		return 0, errors.New("hub: connection already upgraded")
	}
	w.taken = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	resp := &http.Response{StatusCode: w.status, ProtoMajor: 1, ProtoMinor: 1, Header: w.header,
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Close: true}
	err := resp.Write(w.conn)
	_ = w.conn.Close()
	return len(b), err
}

func (w *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.taken {
		return nil, nil, errors.New("hub: connection already taken")
	}
	w.taken = true
	return w.ws, w.brw, nil
}

func isExpectedClose(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) || errors.Is(err, melody.ErrSessionClosed) || errors.Is(err, melody.ErrWriteClosed)
}

// reserve takes one of the user's MaxSessionsPerUser slots, on this node
// and, when the broker counts sessions, on all of them.
func (h *Hub) reserve(ctx context.Context, user string) (release func(), err error) {
	max := h.opts.MaxSessionsPerUser
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	if max > 0 && h.slots[user] >= max {
		h.mu.Unlock()
		return nil, ErrTooManySessions
	}
	if h.opts.MaxSessions > 0 && h.reserved >= h.opts.MaxSessions {
		h.mu.Unlock()
		return nil, ErrHubFull
	}
	h.slots[user]++
	h.reserved++
	h.live.add(1)
	h.mu.Unlock()
	local := func() {
		h.mu.Lock()
		if h.slots[user]--; h.slots[user] <= 0 {
			delete(h.slots, user)
			if len(h.slots) == 0 {
				h.slots = make(map[string]int)
			}
		}
		h.reserved--
		h.mu.Unlock()
		h.live.add(-1)
		if err := h.syncUser(user); err != nil {
			h.reportError(nil, err)
		}
	}
	release = sync.OnceFunc(local)
	if sc, ok := h.broker.(SessionCounter); ok && max > 0 {
		remote, err := sc.AcquireSession(ctx, user, max)
		if err != nil {
			local()
			if errors.Is(err, ErrTooManySessions) {
				return nil, err
			}
			return nil, fmt.Errorf("hub: count sessions across nodes: %w", err)
		}
		release = sync.OnceFunc(func() { remote(); local() })
	}
	if err := h.syncUser(user); err != nil {
		// The session works on this node; messages for the user from
		// other nodes reach it once a later session subscribes.
		h.reportError(nil, err)
	}
	return release, nil
}

func sessionOf(ms *melody.Session) *Session {
	v, _ := ms.Get(keySession)
	s, _ := v.(*Session)
	return s
}

func sessionID(ms *melody.Session) string {
	if s := sessionOf(ms); s != nil {
		return s.id
	}
	return ""
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *Hub) onConnect(ms *melody.Session) {
	p, _ := ms.Keys[keyPrincipal].(*Principal)
	refresh, _ := ms.Keys[keyRefresh].(Refresher)
	s := &Session{
		hub:       h,
		conn:      ms.WebsocketConnection(),
		id:        newID(),
		refresher: refresh,
	}
	s.principal.Store(p)
	// The session holds them now; a refresh replaces the principal.
	ms.UnSet(keyPrincipal)
	ms.UnSet(keyRefresh)
	socket := s.conn.NetConn().(*sock.Conn)
	s.out = newOutbox(h, socket, s)
	s.out.deflate = compressed(ms.Request)
	ms.Set(keySession, s)
	socket.Own(s.out.requeue, s.writeFailed)
	s.conn.SetPingHandler(s.onPing)
	welcome, _ := encodeEvent("welcome", "", struct {
		Session   string `json:"session"`
		User      string `json:"user"`
		Heartbeat int64  `json:"heartbeat"`
	}{s.id, p.UserID, h.opts.PingInterval.Milliseconds()})
	_ = s.out.enqueue(outgoing{data: welcome, urgent: true})

	h.mu.Lock()
	h.sessions[s] = struct{}{}
	if h.users[p.UserID] == nil {
		h.users[p.UserID] = make(map[*Session]struct{})
	}
	h.users[p.UserID][s] = struct{}{}
	closed := h.closed
	h.mu.Unlock()

	if closed {
		s.refuse(wire.CloseGoingAway)
		return
	}
	if h.opts.OnConnect != nil {
		if err := h.opts.OnConnect(s); err != nil {
			h.log.Info("ginws: session refused", "session", s.id, "user", p.UserID, "err", err)
			s.refuse(wire.CloseForbidden)
			return
		}
	}
	s.out.open()
	s.pingTimer = time.AfterFunc(h.opts.PingInterval, s.ping)
	s.mu.Lock()
	s.watchExpiry(p)
	s.mu.Unlock()
	h.obs.SessionOpened()
	h.log.Debug("ginws: session open", "session", s.id, "user", p.UserID)
}

// onDisconnect runs once per session, after melody's reader returned and the
// connection is closed.
func (h *Hub) onDisconnect(ms *melody.Session) {
	s := sessionOf(ms)
	if s == nil {
		return
	}
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	s.mu.Lock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.state = gone
	if s.ctx != nil {
		s.ctx.cancel()
	}
	if s.closeErr == nil {
		s.closeErr = &CloseError{Code: wire.CloseAbnormal, Reason: wire.CloseAbnormal.Reason()}
	}
	s.mu.Unlock()
	s.out.discard()

	h.mu.Lock()
	delete(h.sessions, s)
	if us := h.users[s.user()]; us != nil {
		delete(us, s)
		if len(us) == 0 {
			delete(h.users, s.user())
		}
	}
	if len(h.sessions) == 0 {
		// Maps keep their peak size: once everyone has gone, new ones.
		h.sessions = make(map[*Session]struct{})
		h.users = make(map[string]map[*Session]struct{})
	}
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	for _, r := range rooms {
		h.leave(s, r)
	}
	if h.opts.OnDisconnect != nil {
		h.opts.OnDisconnect(s)
	}
	h.obs.SessionClosed(s.closeErr.Code)
	h.log.Debug("ginws: session closed", "session", s.id, "user", s.user(), "reason", s.closeErr.Reason)
	// The slot was taken in Accept, which handed melody its release.
	if release, _ := ms.Keys[keyRelease].(func()); release != nil {
		release()
	}
}
