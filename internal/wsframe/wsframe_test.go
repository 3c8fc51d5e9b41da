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
