package hub_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/wire"
)

// rawClient speaks the wire by hand, so that a test sees each frame's bits.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	// Extensions is the server's Sec-WebSocket-Extensions.
	Extensions string
}

// rawDial upgrades with offer as Sec-WebSocket-Extensions (none when empty)
// and reads the welcome.
func rawDial(t *testing.T, url, query, offer string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET /?" + query + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + wire.Subprotocol + "\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n"
	if offer != "" {
		req += "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	_, err = conn.Write([]byte(req + "\r\n"))
	require.NoError(t, err)
	c := &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
	_ = conn.SetReadDeadline(time.Now().Add(wstest.Wait))
	resp, err := http.ReadResponse(c.br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	c.Extensions = resp.Header.Get("Sec-WebSocket-Extensions")
	_, _, data := c.Read()
	require.Contains(t, string(data), `"welcome"`)
	return c
}

// Read returns the next frame's opcode, whether it was compressed, and its
// payload, inflated.
func (c *rawClient) Read() (op byte, compressed bool, data []byte) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(wstest.Wait))
	var h [2]byte
	_, err := io.ReadFull(c.br, h[:])
	require.NoError(c.t, err)
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(c.br, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, err = io.ReadFull(c.br, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	require.NoError(c.t, err)
	data = make([]byte, n)
	_, err = io.ReadFull(c.br, data)
	require.NoError(c.t, err)
	if compressed = h[0]&0x40 != 0; compressed {
		data, err = io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(data), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff"))))
		require.NoError(c.t, err)
	}
	return h[0] & 0x0f, compressed, data
}

// Send writes one masked frame whose first byte is b0 (RSV1 0x40 marks it
// compressed).
func (c *rawClient) Send(b0 byte, payload []byte) {
	c.t.Helper()
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key...)
	for i, x := range payload {
		b = append(b, x^key[i&3])
	}
	_, err := c.conn.Write(b)
	require.NoError(c.t, err)
}

// compress deflates p as a permessage-deflate sender does.
func compress(t *testing.T, p []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, level)
	require.NoError(t, err)
	_, _ = w.Write(p)
	require.NoError(t, w.Flush())
	return bytes.TrimSuffix(b.Bytes(), []byte("\x00\x00\xff\xff"))
}

// Next reads frames until one of type typ, decoding array frames.
func (c *rawClient) Next(typ string) (compressed bool, f wstest.Frame) {
	c.t.Helper()
	for {
		_, z, data := c.Read()
		fs, err := wstest.SplitFrames(data)
		require.NoError(c.t, err)
		for _, f := range fs {
			if f.Type == typ {
				return z, f
			}
		}
	}
}

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
		assert.Equal(t, tc.want, rawDial(t, tc.url, "user=a", tc.offer).Extensions, "%s", tc.offer)
	}
}

func TestCompressedFramesBothWays(t *testing.T) {
	h, url := chatHub(t, hub.Options{Compression: hub.Compression{Enabled: true}})
	alice := rawDial(t, url, "user=alice", "permessage-deflate; client_max_window_bits")
	// A compressed request is inflated before the hub reads it.
	alice.Send(0xc1, compress(t, []byte(`{"type":"join","id":"j","room":"r"}`), 9))
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
	alice.Send(0xc2, compress(t, img, 1))
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
		"10 MiB of zeros":            {compress(t, make([]byte, 10<<20), 9), wire.CloseTooBig},
		"one byte past the limit":    {compress(t, bytes.Repeat([]byte("a"), hub.DefaultMaxFrameBytes+1), 1), wire.CloseTooBig},
		"data that does not inflate": {[]byte{0xff, 0xff, 0xff, 0xff}, wire.CloseProtocolError},
	} {
		t.Run(name, func(t *testing.T) {
			c := rawDial(t, url, "user=mallory", "permessage-deflate")
			require.Less(t, len(tc.payload), hub.DefaultMaxFrameBytes)
			c.Send(0xc1, tc.payload)
			for {
				op, _, data := c.Read()
				if op == websocket.CloseMessage {
					require.GreaterOrEqual(t, len(data), 2)
					require.Equal(t, tc.code, wire.StatusCode(binary.BigEndian.Uint16(data)), "%s", data[2:])
					break
				}
			}
		})
	}
	eventually(t, func() bool { return h.UserSessions("mallory") == 0 }, "the sessions ended")
}
