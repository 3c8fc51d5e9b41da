package hub

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/internal/deflate"
	"github.com/ginws/ginws/internal/wsframe"
)

// readServerFrame parses one unmasked server frame.
func readServerFrame(t *testing.T, b []byte) (b0 byte, payload, rest []byte) {
	t.Helper()
	h := wsframe.HeaderLen(b[1])
	n := wsframe.PayloadLen(b[:h])
	return b[0], b[h : h+int(n)], b[h+int(n):]
}

// inflateMessage inflates a message's payload as a client does.
func inflateMessage(t *testing.T, p []byte) []byte {
	t.Helper()
	b, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader(deflate.End))))
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
	noise := make([]byte, 1000) // does not shrink
	_, _ = rand.Read(noise)
	small := func(typ string) outgoing { return outgoing{data: []byte(`{"type":"` + typ + `"}`)} }
	for _, tc := range []struct {
		batch []outgoing
		rsv1  []bool // per frame written
	}{
		{[]outgoing{big0}, []bool{true}},
		{[]outgoing{small("a")}, []bool{false}},
		{[]outgoing{small("a"), big0, small("b"), {data: big(1)}}, []bool{true}}, // one array frame
		{[]outgoing{small("a"), small("b")}, []bool{false}},
		{[]outgoing{big0, {data: big(2)}}, []bool{true}},
		{[]outgoing{{data: []byte("pong"), raw: true}, {data: bytes.Repeat([]byte{1}, 300), binary: true}}, []bool{false, true}},
		{[]outgoing{{data: []byte("hi"), control: 0xA}}, []bool{false}},
		{[]outgoing{{data: noise, binary: true}}, []bool{false}},
	} {
		var plain, packed bytes.Buffer
		require.NoError(t, writeBatch(&plain, append([]outgoing(nil), tc.batch...), nil))
		require.NoError(t, writeBatch(&packed, append([]outgoing(nil), tc.batch...), z))
		p, c := plain.Bytes(), packed.Bytes()
		for _, rsv1 := range tc.rsv1 {
			require.NotEmpty(t, p)
			var pb0, cb0 byte
			var pp, cp []byte
			pb0, pp, p = readServerFrame(t, p)
			cb0, cp, c = readServerFrame(t, c)
			if rsv1 {
				require.Equal(t, pb0|0x40, cb0, "RSV1 on %s", pp)
				require.Equal(t, string(pp), string(inflateMessage(t, cp)))
				require.Less(t, len(cp), len(pp))
			} else {
				require.Equal(t, pb0, cb0)
				require.Equal(t, pp, cp)
			}
		}
		require.Empty(t, p)
		require.Empty(t, c)
	}
	first := big0.shared.deflated
	require.NotEmpty(t, first)
	var w bytes.Buffer
	require.NoError(t, writeBatch(&w, []outgoing{big0}, z))
	require.Same(t, &first[0], &big0.shared.deflated[0], "compressed again")
}
