// Package wsframe encodes the headers of WebSocket frames (RFC 6455 section
// 5.2): unmasked and final, as a server sends them (the hub frames its data
// itself, and the bench suite's floor server and load tool's tests use the
// same encoding), and masked, as a client sends them (the inflater of
// permessage-deflate hands gorilla such frames, and tests write them).
package wsframe

import "encoding/binary"

// RSV1 is the bit of the first byte that marks a compressed message
// (permessage-deflate): AppendHeader(b, op|RSV1, n).
const RSV1 = 0x40

// AppendHeader appends the header of a final frame with opcode op and a
// payload of n bytes.
func AppendHeader(b []byte, op byte, n int) []byte {
	return appendHeader(b, 0x80|op, 0, n)
}

// AppendMaskedHeader appends the header of a client frame whose first byte
// is b0 (FIN, RSV bits and opcode) and whose n bytes of payload are masked
// with key (see Mask).
func AppendMaskedHeader(b []byte, b0 byte, n int, key [4]byte) []byte {
	return append(appendHeader(b, b0, 0x80, n), key[:]...)
}

func appendHeader(b []byte, b0, mask byte, n int) []byte {
	b = append(b, b0)
	switch {
	case n < 126:
		return append(b, mask|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, mask|126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, mask|127), uint64(n))
	}
}

// Mask masks (or unmasks) b in place with key, b's first byte being the
// payload's byte at pos; it returns the position after b.
func Mask(b []byte, key [4]byte, pos int) int {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return pos + len(b)
}

// HeaderLen is the length of a frame's header whose second byte is b1: two
// bytes, the extended length, and the mask key of a client frame.
func HeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// PayloadLen is the payload length a whole header h says (see HeaderLen).
func PayloadLen(h []byte) uint64 {
	switch n := h[1] & 0x7f; n {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		return binary.BigEndian.Uint64(h[2:])
	default:
		return uint64(n)
	}
}

// MaskKey is the mask key of a whole client header h.
func MaskKey(h []byte) [4]byte { return [4]byte(h[len(h)-4:]) }
