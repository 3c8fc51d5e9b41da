package wsframe

import (
	"bytes"
	"testing"
)

func TestAppendHeader(t *testing.T) {
	for _, tc := range []struct {
		op   byte
		n    int
		want []byte
	}{
		{1, 0, []byte{0x81, 0}},
		{1, 125, []byte{0x81, 125}},
		{2, 126, []byte{0x82, 126, 0, 126}},
		{1, 65535, []byte{0x81, 126, 0xff, 0xff}},
		{2, 65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{9, 3, []byte{0x89, 3}},
	} {
		if got := AppendHeader([]byte("x"), tc.op, tc.n); !bytes.Equal(got, append([]byte("x"), tc.want...)) {
			t.Errorf("op %d, %d bytes: % x, want % x", tc.op, tc.n, got[1:], tc.want)
		}
	}
}

func TestAppendMaskedHeader(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for _, tc := range []struct {
		b0   byte
		n    int
		want []byte
	}{
		{0x81, 5, []byte{0x81, 0x85, 1, 2, 3, 4}},
		{0xc1, 200, []byte{0xc1, 0xfe, 0, 200, 1, 2, 3, 4}},
		{0x02, 70000, []byte{0x02, 0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 1, 2, 3, 4}},
	} {
		if got := AppendMaskedHeader(nil, tc.b0, tc.n, key); !bytes.Equal(got, tc.want) {
			t.Errorf("% x, want % x", got, tc.want)
		}
	}
	b := []byte("hello, world")
	pos := Mask(b[:5], key, 0)
	Mask(b[5:], key, pos)
	if !bytes.Equal(b, []byte{'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1, ',' ^ 2, ' ' ^ 3, 'w' ^ 4, 'o' ^ 1, 'r' ^ 2, 'l' ^ 3, 'd' ^ 4}) {
		t.Errorf("masked in two parts: %q", b)
	}
}

// HeaderLen, PayloadLen and MaskKey read back what the Append functions
// wrote.
func TestReadHeader(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		for _, h := range [][]byte{AppendHeader(nil, 1, n), AppendMaskedHeader(nil, 0x82, n, key)} {
			if got := HeaderLen(h[1]); got != len(h) {
				t.Fatalf("%d bytes: header of %d, HeaderLen says %d", n, len(h), got)
			}
			if got := PayloadLen(h); got != uint64(n) {
				t.Errorf("PayloadLen %d, want %d", got, n)
			}
		}
		if got := MaskKey(AppendMaskedHeader(nil, 0x81, n, key)); got != key {
			t.Errorf("MaskKey % x", got)
		}
	}
}
