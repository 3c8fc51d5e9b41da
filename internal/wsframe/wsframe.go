// Package wsframe encodes the header of an unmasked, final WebSocket frame
// (RFC 6455 section 5.2), as a server sends it: the hub frames its data
// itself, and the bench suite's floor server and load tool's tests use the
// same encoding.
package wsframe

import "encoding/binary"

// RSV1 is the bit of the first byte that marks a compressed message
// (permessage-deflate): AppendHeader(b, op|RSV1, n).
const RSV1 = 0x40

// AppendHeader appends the header of a final frame with opcode op and a
// payload of n bytes.
func AppendHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}
