package hub

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/internal/deflate"
)

// readServerFrame parses one unmasked server frame.
func readServerFrame(t *testing.T, b []byte) (b0 byte, payload, rest []byte) {
	t.Helper()
	b0, n := b[0], uint64(b[1]&0x7f)
	b = b[2:]
	switch n {
	case 126:
		n, b = uint64(binary.BigEndian.Uint16(b)), b[2:]
	case 127:
		n, b = binary.BigEndian.Uint64(b), b[8:]
	}
	return b0, b[:n], b[n:]
}

// inflateMessage inflates a message's payload as a client does.
func inflateMessage(t *testing.T, p []byte) []byte {
	t.Helper()
	b, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader(deflate.Tail+"\x01\x00\x00\xff\xff"))))
	require.NoError(t, err)
	return b
}

// TestCompressedFrames writes the same queue with and without compression:
// the frames differ only in RSV1 and their payloads' compression, and each
// large event is compressed once for every session it goes to.
func TestCompressedFrames(t *testing.T) {
	z := &Compression{Enabled: true, MinSize: 100, Level: 1}
	big := func(i int) []byte {
		return []byte(`{"type":"tick","data":"` + strings.Repeat("x", 150+i) + `"}`)
	}
	big0 := outgoing{data: big(0), shared: new(shared)}
	batches := [][]outgoing{
		{big0},                           // one large event: compressed
		{{data: []byte(`{"type":"a"}`)}}, // one small: plain
		{{data: []byte(`{"type":"a"}`)}, big0, {data: []byte(`{"type":"b"}`)}, {data: big(1)}}, // an array with large events: compressed
		{{data: []byte(`{"type":"a"}`)}, {data: []byte(`{"type":"b"}`)}},                       // small only: plain
		{big0, {data: big(2)}}, // large only
		{{data: []byte("pong"), raw: true}, {data: bytes.Repeat([]byte{1}, 300), binary: true}},
		{{data: []byte("hi"), control: 0xA}},
	}
	for _, batch := range batches {
		var plain, packed bytes.Buffer
		require.NoError(t, writeBatch(&plain, append([]outgoing(nil), batch...), nil))
		require.NoError(t, writeBatch(&packed, append([]outgoing(nil), batch...), z))
		p, c := plain.Bytes(), packed.Bytes()
		for len(p) > 0 {
			require.NotEmpty(t, c)
			var pb0, cb0 byte
			var pp, cp []byte
			pb0, pp, p = readServerFrame(t, p)
			cb0, cp, c = readServerFrame(t, c)
			if worthCompressing([]outgoing{{data: pp, control: pb0 & 0x08}}, z.MinSize) {
				require.Equal(t, pb0|0x40, cb0, "RSV1 on %s", pp)
				require.Equal(t, string(pp), string(inflateMessage(t, cp)))
				require.Less(t, len(cp), len(pp))
			} else {
				require.Equal(t, pb0, cb0)
				require.Equal(t, pp, cp)
			}
		}
		require.Empty(t, c)
	}
	first := big0.shared.deflated
	require.NotEmpty(t, first)
	var w bytes.Buffer
	require.NoError(t, writeBatch(&w, []outgoing{big0}, z))
	require.Same(t, &first[0], &big0.shared.deflated[0], "compressed again")
}
