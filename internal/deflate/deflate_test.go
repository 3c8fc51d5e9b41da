package deflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/internal/wsframe"
)

func TestNegotiate(t *testing.T) {
	for offer, want := range map[string]bool{
		"permessage-deflate":                                                 true,
		"permessage-deflate; client_max_window_bits":                         true,
		"permessage-deflate; client_max_window_bits=10":                      true,
		`permessage-deflate; client_max_window_bits="12"`:                    true,
		"permessage-deflate; server_no_context_takeover":                     true,
		"permessage-deflate;client_no_context_takeover":                      true,
		"permessage-deflate; server_max_window_bits=15":                      false, // the answer would have to repeat it
		"permessage-deflate; server_max_window_bits=10":                      false, // our window is 32 KiB
		"permessage-deflate; server_max_window_bits=10, permessage-deflate":  true,
		"permessage-deflate; client_max_window_bits=16":                      false,
		"permessage-deflate; server_no_context_takeover=1":                   false,
		"permessage-deflate; unknown":                                        false,
		"permessage-deflate; client_max_window_bits; client_max_window_bits": false,
		"x-webkit-deflate-frame":                                             false,
		"":                                                                   false,
	} {
		require.Equal(t, want, Negotiate([]string{offer}), "%q", offer)
	}
	require.True(t, Negotiate([]string{"foo", "permessage-deflate"}))
}

// inflate reads a message as a receiver does.
func inflate(t *testing.T, p []byte) []byte {
	t.Helper()
	b, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader(End))))
	require.NoError(t, err)
	return b
}

func TestPiecesJoin(t *testing.T) {
	a := []byte(strings.Repeat(`{"type":"tick","data":{"price":42}}`, 20))
	b := []byte(strings.Repeat("abcdefgh", 100))
	ca, cb := Compress(nil, a, 1), Compress(nil, b, 9)
	require.True(t, bytes.HasSuffix(ca, []byte(Tail)))
	require.Less(t, len(ca), len(a)/4)

	var msg []byte
	msg = AppendStored(msg, []byte("["))
	msg = append(msg, ca...)
	msg = AppendStored(msg, []byte(",small,"))
	msg = append(msg, cb...)
	msg = AppendEnd(AppendStored(msg, []byte("]")))
	require.Equal(t, "["+string(a)+",small,"+string(b)+"]", string(inflate(t, msg)))

	// One piece alone, its tail removed as a sender does.
	require.Equal(t, a, inflate(t, ca[:len(ca)-len(Tail)]))

	big := bytes.Repeat([]byte{7}, 3*maxStored+10)
	stored := AppendStored(nil, big)
	require.Len(t, stored, StoredLen(len(big)))
	require.Equal(t, big, inflate(t, AppendEnd(stored)))
	require.Len(t, AppendStored(nil, nil), StoredLen(0))
}

// clientFrame is a masked client frame.
func clientFrame(b0 byte, payload []byte, key [4]byte) []byte {
	b := wsframe.AppendMaskedHeader(nil, b0, len(payload), key)
	n := len(b)
	b = append(b, payload...)
	wsframe.Mask(b[n:], key, 0)
	return b
}

// frame is one frame read back from a Reader's output.
type frame struct {
	b0      byte
	payload []byte
}

// readFrames parses client frames until the input ends.
func readFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	var fs []frame
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), 2)
		b0 := b[0]
		require.NotZero(t, b[1]&0x80, "masked")
		h := wsframe.HeaderLen(b[1])
		n, key := wsframe.PayloadLen(b[:h]), wsframe.MaskKey(b[:h])
		b = b[h:]
		if n > uint64(len(b)) {
			fs = append(fs, frame{b0: b0, payload: make([]byte, n)}) // a header without its payload
			return fs
		}
		p := append([]byte(nil), b[:n]...)
		for i := range p {
			p[i] ^= key[i&3]
		}
		fs = append(fs, frame{b0, p})
		b = b[n:]
	}
	return fs
}

// oneByte reads one byte at a time: every state of the parser meets the end
// of a read.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(1, len(p))]) }

// readAll reads r through reads of size n.
func readAll(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, err
		}
	}
}

func TestReaderInflatesMessages(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	text := []byte(strings.Repeat(`{"type":"chat.send","data":{"text":"hello"}}`, 30))
	c := Compress(nil, text, 1)
	c = c[:len(c)-len(Tail)]
	half := len(c) / 2
	var in []byte
	in = append(in, clientFrame(0x81, []byte(`{"plain":true}`), key)...)
	// A compressed message in two frames with a Ping between them.
	in = append(in, clientFrame(0x41, c[:half], key)...)
	in = append(in, clientFrame(0x89, []byte("ping"), key)...)
	in = append(in, clientFrame(0x80, c[half:], key)...)
	// A compressed binary message in one frame, then a plain one.
	bin := bytes.Repeat([]byte{0, 1, 2, 3}, 500)
	cb := Compress(nil, bin, 1)
	in = append(in, clientFrame(0xc2, cb[:len(cb)-len(Tail)], key)...)
	in = append(in, clientFrame(0x82, []byte{9, 9}, key)...)

	for _, src := range []io.Reader{bytes.NewReader(in), oneByte{bytes.NewReader(in)}} {
		for _, size := range []int{1, 7, 512, 1 << 16} {
			out, err := readAll(NewReader(src, 64<<10), size)
			require.NoError(t, err)
			fs := readFrames(t, out)
			require.Len(t, fs, 5)
			require.Equal(t, frame{0x81, []byte(`{"plain":true}`)}, fs[0])
			require.Equal(t, frame{0x89, []byte("ping")}, fs[1])
			require.Equal(t, frame{0x81, text}, fs[2])
			require.Equal(t, frame{0x82, bin}, fs[3])
			require.Equal(t, frame{0x82, []byte{9, 9}}, fs[4])
			src = oneByte{bytes.NewReader(in)} // the next size reads a fresh input
		}
	}
}

func TestReaderRefuses(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	const limit = 1000
	bomb := Compress(nil, make([]byte, 10<<20), 9)
	exact := Compress(nil, bytes.Repeat([]byte("a"), limit), 1)
	over := Compress(nil, bytes.Repeat([]byte("a"), limit+1), 1)
	for name, tc := range map[string]struct {
		in   []byte
		want byte // the first byte of the last frame out
		n    int  // its length
	}{
		"a bomb inflates to the limit and no further": {clientFrame(0xc1, bomb, key), 0x81, limit + 1},
		"one byte past the limit":                     {clientFrame(0xc1, over, key), 0x81, limit + 1},
		"compressed bytes past the limit":             {clientFrame(0xc2, make([]byte, limit+1), key), 0x82, limit + 1},
		"corrupt data":                                {clientFrame(0xc1, []byte{0xff, 0xff, 0xff}, key), 0x83, 0},
		"RSV1 on a control frame":                     {clientFrame(0xc9, nil, key), 0x83, 0},
		"RSV1 on a continuation":                      {clientFrame(0x40, nil, key), 0x83, 0},
		"a data frame inside a compressed message":    {append(clientFrame(0x41, exact[:3], key), clientFrame(0x81, nil, key)...), 0x83, 0},
		"an unmasked compressed frame":                {[]byte{0xc1, 0x01, 0x00}, 0x83, 0},
		"RSV2 with RSV1":                              {clientFrame(0xe1, nil, key), 0x83, 0},
		"a compressed message inside a plain one":     {append(clientFrame(0x01, []byte("ab"), key), clientFrame(0xc1, exact, key)...), 0x83, 0},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := readAll(NewReader(bytes.NewReader(tc.in), limit), 512)
			require.ErrorIs(t, err, ErrRefused)
			fs := readFrames(t, out)
			require.NotEmpty(t, fs)
			last := fs[len(fs)-1]
			require.Equal(t, tc.want, last.b0)
			require.Len(t, last.payload, tc.n)
		})
	}
	out, err := readAll(NewReader(bytes.NewReader(clientFrame(0xc1, exact[:len(exact)-4], key)), limit), 512)
	require.NoError(t, err)
	require.Equal(t, []frame{{0x81, bytes.Repeat([]byte("a"), limit)}}, readFrames(t, out))

	// A plain message in fragments, then a compressed one: in order.
	in := append(clientFrame(0x01, []byte("ab"), key), clientFrame(0x80, []byte("c"), key)...)
	in = append(in, clientFrame(0xc1, exact[:len(exact)-4], key)...)
	out, err = readAll(NewReader(bytes.NewReader(in), limit), 7)
	require.NoError(t, err)
	require.Equal(t, []frame{{0x01, []byte("ab")}, {0x80, []byte("c")}, {0x81, bytes.Repeat([]byte("a"), limit)}}, readFrames(t, out))
}

// A limit that is not positive (MaxFrameBytes < 0: no limit) is MaxLimit,
// and an empty read returns at once.
func TestReaderLimits(t *testing.T) {
	text := bytes.Repeat([]byte("z"), 100000)
	c := Compress(nil, text, 1)
	r := NewReader(bytes.NewReader(clientFrame(0xc1, c[:len(c)-4], [4]byte{})), -1000)
	n, err := r.Read(nil)
	require.Zero(t, n)
	require.NoError(t, err)
	out, err := readAll(r, 512)
	require.NoError(t, err)
	require.Equal(t, []frame{{0x81, text}}, readFrames(t, out))
}

// FuzzReader feeds the inflater any input, in reads of any size: it never
// panics, and it ends.
func FuzzReader(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	c := Compress(nil, []byte(strings.Repeat("hello ", 50)), 1)
	f.Add(clientFrame(0xc1, c[:len(c)-4], key), uint8(3))
	f.Add(append(clientFrame(0x41, c[:5], key), clientFrame(0x80, c[5:len(c)-4], key)...), uint8(1))
	f.Add(clientFrame(0x81, []byte("plain"), key), uint8(200))
	f.Add(clientFrame(0xc1, Compress(nil, make([]byte, 5000), 9), key), uint8(64))
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		const limit = 2000
		r := NewReader(bytes.NewReader(in), limit)
		buf := make([]byte, int(size)+1)
		for reads := 0; ; reads++ {
			if _, err := r.Read(buf); err != nil {
				break
			}
			if reads > 1000*(len(in)+limit) {
				t.Fatalf("%d reads of %d bytes in", reads, len(in))
			}
		}
	})
}
