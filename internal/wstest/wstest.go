package wstest

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
)

// wire.Subprotocol is offered on every dial.

// Wait bounds every read.
const Wait = 5 * time.Second

// Client is one test connection.
type Client struct {
	t *testing.T
	// Conn is the underlying connection, for raw frames.
	Conn *websocket.Conn
	// Welcome is the server's first frame.
	Welcome Frame
	// pending holds frames split out of an array frame, or skipped by
	// Request, to be read again in order.
	pending []Frame
}

// Frame is a server frame.
type Frame struct {
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

// Dialer offers wire.Subprotocol and bounds the handshake by Wait.
func Dialer() *websocket.Dialer {
	return &websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: Wait}
}

// Dial connects, checks the selected subprotocol and reads the welcome.
func Dial(t *testing.T, url string, header http.Header) *Client {
	t.Helper()
	return DialWith(t, Dialer(), url, header)
}

// DialWith is Dial through d.
func DialWith(t *testing.T, d *websocket.Dialer, url string, header http.Header) *Client {
	t.Helper()
	conn, resp, err := d.Dial(url, header)
	require.NoError(t, err)
	require.Equal(t, wire.Subprotocol, resp.Header.Get("Sec-WebSocket-Protocol"))
	t.Cleanup(func() { conn.Close() })
	c := &Client{t: t, Conn: conn}
	c.Welcome = c.Read()
	require.Equal(t, "welcome", c.Welcome.Type)
	return c
}

// SessionID returns the session id from the welcome.
func (c *Client) SessionID() string {
	var w struct {
		Session string `json:"session"`
	}
	require.NoError(c.t, json.Unmarshal(c.Welcome.Data, &w))
	return w.Session
}

// Send writes a text frame: a string as is, anything else as JSON.
func (c *Client) Send(v any) {
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
	require.NoError(c.t, c.Conn.WriteMessage(websocket.TextMessage, data))
}

// Read returns the next server frame, splitting array frames.
func (c *Client) Read() Frame {
	c.t.Helper()
	f, ce := c.Next()
	require.Nil(c.t, ce, "the connection closed")
	return f
}

// Next returns the next server frame, or the close error when the
// connection ends with a close frame instead; any other end fails the test.
func (c *Client) Next() (Frame, *websocket.CloseError) {
	c.t.Helper()
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f, nil
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(Wait))
	typ, data, err := c.Conn.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return Frame{}, ce
	}
	require.NoError(c.t, err)
	require.Equal(c.t, websocket.TextMessage, typ)
	fs, err := SplitFrames(data)
	require.NoError(c.t, err, "frame %s", data)
	c.pending = append(c.pending, fs[1:]...)
	return fs[0], nil
}

// ReadRaw returns the next message from the connection as it came: a
// frame that is not JSON (a plain-text pong) or binary data. Frames
// already read and kept for Read stay kept.
func (c *Client) ReadRaw() (typ int, data []byte) {
	c.t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(Wait))
	typ, data, err := c.Conn.ReadMessage()
	require.NoError(c.t, err)
	return typ, data
}

// Drain sends a ping and returns the frames that arrive before its pong:
// everything the server had sent the client when it read the ping.
func (c *Client) Drain() []Frame {
	c.t.Helper()
	c.Send(`{"type":"ping","id":"drain"}`)
	var fs []Frame
	for {
		f := c.Read()
		if f.Type == "pong" && f.ID == "drain" {
			return fs
		}
		fs = append(fs, f)
	}
}

// Request sends a frame with an id and returns the reply to it; events that
// come first are kept for later reads, in order.
func (c *Client) Request(typ, id, room string, data any) Frame {
	c.t.Helper()
	m := map[string]any{"type": typ, "id": id}
	if room != "" {
		m["room"] = room
	}
	if data != nil {
		m["data"] = data
	}
	c.Send(m)
	var skipped []Frame
	for {
		f := c.Read()
		if f.ID == id && (f.Type == "ack" || f.Type == "error" || f.Type == "pong") {
			c.pending = append(skipped, c.pending...)
			return f
		}
		skipped = append(skipped, f)
	}
}

// ReadUntil reads frames until one of type typ arrives.
func (c *Client) ReadUntil(typ string) Frame {
	c.t.Helper()
	for {
		if f := c.Read(); f.Type == typ {
			return f
		}
	}
}

// ExpectClose reads until the close frame and returns its code; it fails
// the test if the connection ends without one (a reset, say).
func (c *Client) ExpectClose() int {
	c.t.Helper()
	code := CloseCode(c.Conn)
	require.NotZero(c.t, code, "want a close frame, the connection ended without one")
	return code
}

// Reset closes the TCP connection with SO_LINGER 0: the peer sees a reset.
func (c *Client) Reset() {
	if tcp, ok := c.Conn.UnderlyingConn().(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	c.Conn.UnderlyingConn().Close()
}

// SplitFrames parses a server frame, which may be an array of frames.
func SplitFrames(data []byte) ([]Frame, error) {
	if len(data) > 0 && data[0] == '[' {
		var fs []Frame
		if err := json.Unmarshal(data, &fs); err != nil {
			return nil, err
		}
		if len(fs) == 0 {
			return nil, &json.UnsupportedValueError{Str: "empty array frame"}
		}
		return fs, nil
	}
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	return []Frame{f}, nil
}

// JoinAck is the data of a join's ack.
type JoinAck struct {
	Room      string
	Members   int
	Epoch     string
	Offset    uint64
	Recovered bool
}

// Join joins room, resuming after since when it is not nil, and returns
// the ack; events replayed before the ack are kept for later reads.
func (c *Client) Join(room string, since *hub.Position) JoinAck {
	c.t.Helper()
	var data any
	if since != nil {
		data = map[string]any{"since": since}
	}
	f := c.Request("join", "join-"+room, room, data)
	require.Equal(c.t, "ack", f.Type, "join %s: %+v", room, f.Error)
	var a JoinAck
	require.NoError(c.t, json.Unmarshal(f.Data, &a))
	return a
}
