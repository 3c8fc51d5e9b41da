package hub_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
)

// serve starts a loopback server whose upgrade takes the principal from the
// query (?user=alice&roles=a,b&ttl=1s), standing in for the middleware.
func serve(t *testing.T, h *hub.Hub) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := hub.Principal{UserID: q.Get("user")}
		if roles := q.Get("roles"); roles != "" {
			p.Roles = strings.Split(roles, ",")
		}
		if ttl, err := time.ParseDuration(q.Get("ttl")); err == nil {
			p.Expires = time.Now().Add(ttl)
		}
		if err := h.Accept(w, r, p); err != nil {
			code := http.StatusServiceUnavailable
			if errors.Is(err, hub.ErrTooManySessions) {
				code = http.StatusTooManyRequests
			}
			if !errors.Is(err, hub.ErrHubClosed) && !errors.Is(err, hub.ErrTooManySessions) {
				return // the upgrader answered already
			}
			http.Error(w, err.Error(), code)
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// shutdownOnCleanup stops the hub at the end of the test, bounded.
func shutdownOnCleanup(t *testing.T, h *hub.Hub) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		require.NoError(t, h.Shutdown(ctx))
	})
}

type client struct {
	t    *testing.T
	conn *websocket.Conn
	// pending holds frames split out of an array frame.
	pending []frame
	welcome frame
}

type frame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Room   string          `json:"room"`
	Data   json.RawMessage `json:"data"`
	Offset uint64          `json:"offset"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Fields  []struct {
			Field, Rule, Param, Message string
		} `json:"fields"`
	} `json:"error"`
}

func dial(t *testing.T, url, query string) *client {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{hub.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url+"?"+query, nil)
	require.NoError(t, err)
	require.Equal(t, hub.Subprotocol, resp.Header.Get("Sec-WebSocket-Protocol"))
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn}
	c.welcome = c.read()
	require.Equal(t, "welcome", c.welcome.Type)
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	var data []byte
	switch v := v.(type) {
	case string:
		data = []byte(v)
	default:
		var err error
		data, err = json.Marshal(v)
		require.NoError(c.t, err)
	}
	require.NoError(c.t, c.conn.WriteMessage(websocket.TextMessage, data))
}

// read returns the next server frame, splitting array frames, within 5 s.
func (c *client) read() frame {
	c.t.Helper()
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := c.conn.ReadMessage()
	require.NoError(c.t, err)
	require.Equal(c.t, websocket.TextMessage, typ)
	if len(data) > 0 && data[0] == '[' {
		require.NoError(c.t, json.Unmarshal(data, &c.pending))
		return c.read()
	}
	var f frame
	require.NoError(c.t, json.Unmarshal(data, &f), "frame %s", data)
	return f
}

// request sends a frame with an id and returns the reply to it, skipping
// events that come first.
func (c *client) request(typ, id, room string, data any) frame {
	c.t.Helper()
	m := map[string]any{"type": typ, "id": id}
	if room != "" {
		m["room"] = room
	}
	if data != nil {
		m["data"] = data
	}
	c.send(m)
	var skipped []frame
	for {
		f := c.read()
		if f.ID == id && (f.Type == "ack" || f.Type == "error" || f.Type == "pong") {
			// Events that came first are read again later, in order.
			c.pending = append(skipped, c.pending...)
			return f
		}
		skipped = append(skipped, f)
	}
}

// expectClose reads until the close frame and returns its code.
func (c *client) expectClose() int {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(c.t, err, &ce, "want a close frame, got %v", err)
		return ce.Code
	}
}

// readUntil reads frames until one of type typ arrives.
func (c *client) readUntil(typ string) frame {
	c.t.Helper()
	for {
		if f := c.read(); f.Type == typ {
			return f
		}
	}
}

// resetConn closes the TCP connection with SO_LINGER 0: the peer sees a reset.
func (c *client) reset() {
	if tcp, ok := c.conn.UnderlyingConn().(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	c.conn.UnderlyingConn().Close()
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, msg)
}

// splitFrames parses a server frame, which may be an array of frames.
func splitFrames(data []byte) []frame {
	var fs []frame
	if len(data) > 0 && data[0] == '[' {
		_ = json.Unmarshal(data, &fs)
		return fs
	}
	var f frame
	_ = json.Unmarshal(data, &f)
	return []frame{f}
}
