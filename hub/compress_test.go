package hub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/wire"
)

func TestCompressionIsNegotiated(t *testing.T) {
	on := serve(t, hub.New(hub.Options{Logger: wstest.Quiet, Compression: hub.Compression{Enabled: true}}))
	off := serve(t, hub.New(hub.Options{Logger: wstest.Quiet}))
	const ours = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	for _, tc := range []struct {
		url, offer, want string
	}{
		{on, "permessage-deflate; client_max_window_bits", ours}, // what Chromium offers
		{on, "permessage-deflate; server_max_window_bits=10", ""},
		{on, "permessage-deflate; server_max_window_bits=10, permessage-deflate", ours},
		{on, "", ""},
		{off, "permessage-deflate; client_max_window_bits", ""},
	} {
		assert.Equal(t, tc.want, wstest.RawDial(t, tc.url+"?user=a", offer(tc.offer)).Extensions, "%s", tc.offer)
	}
}

func TestCompressedFramesBothWays(t *testing.T) {
	h, url := chatHub(t, hub.Options{Compression: hub.Compression{Enabled: true}})
	alice := wstest.RawDial(t, url+"?user=alice", offer("permessage-deflate; client_max_window_bits"))
	// A compressed request is inflated before the hub reads it.
	alice.Send(0xc1, wstest.Deflate(t, []byte(`{"type":"join","id":"j","room":"r"}`), 9))
	z, ack := alice.Next("ack")
	require.Equal(t, "j", ack.ID)
	require.False(t, z, "an answer under MinSize goes plain")
	bob := dial(t, url, "user=bob")
	bob.Join("r", nil)

	long := strings.Repeat("all work and no play ", 20)
	bob.Request("chat.send", "s1", "", wstest.SendChat{Room: "r", Text: long})
	z, f := alice.Next("chat.message")
	require.True(t, z, "an event over MinSize is compressed")
	var m wstest.ChatMessage
	require.NoError(t, json.Unmarshal(f.Data, &m))
	require.Equal(t, wstest.ChatMessage{User: "bob", Text: long}, m)
	require.Equal(t, long, decodeChat(t, bob.ReadUntil("chat.message")).Text, "a session without the extension gets it plain")

	bob.Request("chat.send", "s2", "", wstest.SendChat{Room: "r", Text: "hi"})
	z, f = alice.Next("chat.message")
	require.False(t, z)
	require.Contains(t, string(f.Data), `"hi"`)

	// Binary frames, both ways.
	got := make(chan []byte, 1)
	h.HandleBinary(func(c *hub.Context, data []byte) error { got <- data; return c.Session().EmitBinary(data) })
	img := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 1000)
	alice.Send(0xc2, wstest.Deflate(t, img, 1))
	require.Equal(t, img, <-got)
	op, z, data := alice.Read()
	require.Equal(t, byte(websocket.BinaryMessage), op)
	require.True(t, z)
	require.Equal(t, img, data)
}

func decodeChat(t *testing.T, f wstest.Frame) (m wstest.ChatMessage) {
	t.Helper()
	require.NoError(t, json.Unmarshal(f.Data, &m))
	return m
}

// A frame within MaxFrameBytes that inflates past it closes with 1009, as a
// frame too large does, whatever it would inflate to.
func TestAZipBombClosesWith1009(t *testing.T) {
	h, url := chatHub(t, hub.Options{Compression: hub.Compression{Enabled: true}})
	for name, tc := range map[string]struct {
		payload []byte
		code    wire.StatusCode
	}{
		"10 MiB of zeros":            {wstest.Deflate(t, make([]byte, 10<<20), 9), wire.CloseTooBig},
		"one byte past the limit":    {wstest.Deflate(t, bytes.Repeat([]byte("a"), hub.DefaultMaxFrameBytes+1), 1), wire.CloseTooBig},
		"data that does not inflate": {[]byte{0xff, 0xff, 0xff, 0xff}, wire.CloseProtocolError},
	} {
		t.Run(name, func(t *testing.T) {
			c := wstest.RawDial(t, url+"?user=mallory", offer("permessage-deflate"))
			require.Less(t, len(tc.payload), hub.DefaultMaxFrameBytes)
			c.Send(0xc1, tc.payload)
			require.Equal(t, tc.code, c.CloseCode())
		})
	}
	eventually(t, func() bool { return h.UserSessions("mallory") == 0 }, "the sessions ended")
}

// offer is the header that offers extensions (none when empty).
func offer(extensions string) http.Header {
	if extensions == "" {
		return nil
	}
	return http.Header{"Sec-Websocket-Extensions": {extensions}}
}

// BenchmarkConnectionMemory reports the heap per connection of 1,000
// sessions in a room, with and without permessage-deflate, after each got a
// 2.5 KB event (compressed for those that negotiated it): compression keeps
// no compressor per connection. The clients' own heap (raw connections, the
// same in both) is included. Run with -benchtime=1x.
func BenchmarkConnectionMemory(b *testing.B) {
	event := map[string]string{"text": strings.Repeat("dashboard figures ", 140)}
	for _, mode := range []string{"plain", "deflate"} {
		b.Run(mode, func(b *testing.B) {
			h := hub.New(hub.Options{Logger: wstest.Quiet, Compression: hub.Compression{Enabled: true}})
			url := wstest.Serve(b, h)
			const n = 1000
			for range b.N {
				before := heap()
				conns := make([]*wstest.RawClient, n)
				for i := range conns {
					header := http.Header{}
					if mode == "deflate" {
						header = offer("permessage-deflate; client_max_window_bits")
					}
					conns[i] = wstest.RawDial(b, fmt.Sprintf("%s?user=u%d", url, i), header)
					conns[i].Send(0x81, []byte(`{"type":"join","id":"j","room":"r"}`))
					conns[i].Next("ack")
				}
				require.NoError(b, h.To("r").Emit("dashboard", event))
				for _, c := range conns {
					z, _ := c.Next("dashboard")
					require.Equal(b, mode == "deflate", z)
				}
				b.ReportMetric(float64(heap()-before)/n, "heap-B/conn")
				for _, c := range conns {
					c.Close()
				}
			}
		})
	}
}

// heap is the heap in use after a collection.
func heap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
