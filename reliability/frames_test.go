package reliability_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
)

const maxFrame = hub.DefaultMaxFrameBytes

func TestFramesThatStayOpen(t *testing.T) {
	a := newApp(t, hub.Options{MaxFrameBytes: maxFrame}, middleware.Options{})
	c := wstest.Dial(t, a.URL, user(t, "alice"))
	c.Request("join", "j", "lobby", nil)
	for _, tc := range []struct {
		attack, frame string
		binary        bool
		reply         string // type of the reply, or an error code
	}{
		{"frame of exactly the maximum size", wstest.PingOfSize(maxFrame), false, "pong"},
		{"binary frame without a binary handler", "\x00\x01", true, "unsupported"},
		{"not JSON", "hello", false, "bad_request"},
		{"JSON array", `[{"type":"ping"}]`, false, "bad_request"},
		{"JSON depth 10,000 within the size limit", `{"type":"ping","data":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, false, "bad_request"},
		{"huge number", `{"type":"count","id":"h","data":{"n":1e400}}`, false, "bad_request"},
		{"duplicate keys (last wins)", `{"type":"nope","type":"ping","id":"d"}`, false, "pong"},
		{"unknown type", `{"type":"nope","id":"u"}`, false, "unknown_type"},
		{"validation failure", `{"type":"chat.send","id":"v","data":{"room":"lobby","text":""}}`, false, "validation_failed"},
		{"handler that panics", `{"type":"boom","id":"p"}`, false, "internal"},
	} {
		t.Run(tc.attack, func(t *testing.T) {
			typ := websocket.TextMessage
			if tc.binary {
				typ = websocket.BinaryMessage
			}
			require.NoError(t, c.Conn.WriteMessage(typ, []byte(tc.frame)))
			f := c.Read()
			got := f.Type
			if f.Type == "error" {
				got = f.Error.Code
			}
			assert.Equal(t, tc.reply, got)
			assert.Equal(t, "pong", c.Request("ping", "next", "", nil).Type, "the next valid frame works")
			what := "`" + tc.reply + "` reply"
			if tc.reply == "pong" {
				what = "handled (`pong`)"
			}
			observe("frames", tc.attack, what+"; connection stays open and the next frame works")
		})
	}
}

func TestFramesThatClose(t *testing.T) {
	a := newApp(t, hub.Options{MaxFrameBytes: maxFrame}, middleware.Options{})
	fragmented := func(c *wstest.Client) {
		w, err := c.Conn.NextWriter(websocket.TextMessage)
		require.NoError(t, err)
		for range 3 {
			_, _ = w.Write([]byte(strings.Repeat(" ", maxFrame/2)))
		}
		_ = w.Close()
	}
	for _, tc := range []struct {
		attack string
		send   func(c *wstest.Client)
		code   int
	}{
		{"frame of the maximum size plus one byte", func(c *wstest.Client) { c.Send(wstest.PingOfSize(maxFrame + 1)) }, 1009},
		{"fragments adding up past the maximum", fragmented, 1009},
		{"text frame that is not valid UTF-8", func(c *wstest.Client) { c.Send("{\"type\":\"ping\",\"data\":\"\xc3\x28\"}") }, 1007},
		{"20 invalid frames in a row", func(c *wstest.Client) {
			for range 20 {
				c.Send("garbage")
			}
		}, 1008},
	} {
		t.Run(tc.attack, func(t *testing.T) {
			c := wstest.Dial(t, a.URL, user(t, "alice"))
			tc.send(c)
			assert.Equal(t, tc.code, c.ExpectClose())
			observe("frames", tc.attack, fmt.Sprintf("closed with %d (close frame received, no reset)", tc.code))
		})
	}
}
