package redis

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/ginws/ginws/hub"
)

const codecVersion = 1

var errBadMessage = errors.New("redis broker: malformed message")

// encode packs a message for a Redis channel: version, kind, flags, then
// length-prefixed node, target, except and offset (decimal, empty when
// none), then the frame as is (no JSON around JSON, no base64 around binary
// frames).
func encode(node string, m hub.Message) []byte {
	off := ""
	if m.Offset > 0 {
		off = strconv.FormatUint(m.Offset, 10)
	}
	b := header(node, m)
	b = binary.AppendUvarint(b, uint64(len(off)))
	b = append(b, off...)
	return append(b, m.Payload...)
}

// header is encode's output up to the offset field, which the history
// script appends once it knows the offset.
func header(node string, m hub.Message) []byte {
	target := m.Room
	if m.Kind == hub.TargetUser {
		target = m.User
	}
	b := make([]byte, 0, 4+4*binary.MaxVarintLen16+len(node)+len(target)+len(m.Except)+20+len(m.Payload))
	var flags byte
	if m.Binary {
		flags = 1
	}
	b = append(b, codecVersion, byte(m.Kind), flags)
	for _, s := range []string{node, target, m.Except} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decode unpacks a message and the node that published it.
func decode(b []byte) (node string, m hub.Message, err error) {
	if len(b) < 3 || b[0] != codecVersion {
		return "", m, errBadMessage
	}
	m.Kind = hub.TargetKind(b[1])
	if m.Kind < hub.TargetRoom || m.Kind > hub.TargetAll || b[2] > 1 {
		return "", m, errBadMessage
	}
	m.Binary = b[2] == 1
	b = b[3:]
	var fields [4]string
	for i := range fields {
		n, k := binary.Uvarint(b)
		// Only the shortest encoding is valid: one message, one form.
		if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-k) {
			return "", m, errBadMessage
		}
		fields[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	node, m.Except = fields[0], fields[2]
	switch m.Kind {
	case hub.TargetRoom:
		m.Room = fields[1]
	case hub.TargetUser:
		m.User = fields[1]
	default:
		if fields[1] != "" {
			return "", m, errBadMessage
		}
	}
	if fields[3] != "" {
		if m.Offset, err = strconv.ParseUint(fields[3], 10, 64); err != nil || m.Offset == 0 || strconv.FormatUint(m.Offset, 10) != fields[3] {
			return "", hub.Message{}, errBadMessage
		}
	}
	m.Payload = b
	return node, m, nil
}
