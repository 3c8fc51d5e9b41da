package wstest

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/internal/deflate"
	"github.com/ginws/ginws/internal/wsframe"
	"github.com/ginws/ginws/wire"
)

// RawClient speaks the wire by hand, so that a test sees each frame's bits.
type RawClient struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	// Extensions is the server's Sec-WebSocket-Extensions.
	Extensions string
}

// RawDial upgrades with header added to the request (Authorization,
// Sec-WebSocket-Extensions...) and reads the welcome.
func RawDial(t testing.TB, url string, header http.Header) *RawClient {
	t.Helper()
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + wire.Subprotocol + "\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n"
	for k, vs := range header {
		for _, v := range vs {
			req += k + ": " + v + "\r\n"
		}
	}
	_, err = conn.Write([]byte(req + "\r\n"))
	require.NoError(t, err)
	c := &RawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
	_ = conn.SetReadDeadline(time.Now().Add(Wait))
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
func (c *RawClient) Read() (op byte, compressed bool, data []byte) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(Wait))
	h := make([]byte, 2, 14)
	_, err := io.ReadFull(c.br, h)
	require.NoError(c.t, err)
	h = h[:wsframe.HeaderLen(h[1])]
	_, err = io.ReadFull(c.br, h[2:])
	require.NoError(c.t, err)
	data = make([]byte, wsframe.PayloadLen(h))
	_, err = io.ReadFull(c.br, data)
	require.NoError(c.t, err)
	if compressed = h[0]&0x40 != 0; compressed {
		data, err = io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(data), strings.NewReader(deflate.End))))
		require.NoError(c.t, err)
	}
	return h[0] & 0x0f, compressed, data
}

// Send writes one masked frame whose first byte is b0 (RSV1 0x40 marks it
// compressed).
func (c *RawClient) Send(b0 byte, payload []byte) {
	c.t.Helper()
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b := wsframe.AppendMaskedHeader(nil, b0, len(payload), key)
	n := len(b)
	b = append(b, payload...)
	wsframe.Mask(b[n:], key, 0)
	_, err := c.conn.Write(b)
	require.NoError(c.t, err)
}

// Deflate compresses p as a permessage-deflate sender does.
func Deflate(t testing.TB, p []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, level)
	require.NoError(t, err)
	_, _ = w.Write(p)
	require.NoError(t, w.Flush())
	return bytes.TrimSuffix(b.Bytes(), []byte("\x00\x00\xff\xff"))
}

// Next reads frames until one of type typ, decoding array frames.
func (c *RawClient) Next(typ string) (compressed bool, f Frame) {
	c.t.Helper()
	for {
		_, z, data := c.Read()
		fs, err := SplitFrames(data)
		require.NoError(c.t, err)
		for _, f := range fs {
			if f.Type == typ {
				return z, f
			}
		}
	}
}

// CloseCode reads until the close frame and returns its code.
func (c *RawClient) CloseCode() wire.StatusCode {
	c.t.Helper()
	for {
		op, _, data := c.Read()
		if op == 8 {
			require.GreaterOrEqual(c.t, len(data), 2, "a close frame with a code")
			return wire.StatusCode(binary.BigEndian.Uint16(data))
		}
	}
}

// Close closes the connection without a closing handshake.
func (c *RawClient) Close() { _ = c.conn.Close() }
