package hub

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/internal/sock"
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
	slim := handshake(r)
	go func() {
		// melody upgrades and then reads until the connection ends.
		if err := h.m.HandleRequestWithKeys(hw, slim, map[string]any{keyPrincipal: p, keyRelease: end}); err != nil {
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
func handshake(r *http.Request) *http.Request {
	h := make(http.Header, 6)
	for _, k := range []string{"Connection", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Sec-Websocket-Extensions", "Origin"} {
		if v, ok := r.Header[k]; ok {
			h[k] = v
		}
	}
	for _, p := range websocket.Subprotocols(r) {
		if p == Subprotocol {
			h["Sec-Websocket-Protocol"] = []string{Subprotocol}
		}
	}
	return &http.Request{Method: r.Method, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: h, Host: r.Host, RemoteAddr: r.RemoteAddr, URL: &url.URL{Path: r.URL.Path}}
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
