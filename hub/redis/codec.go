package redis

import (
	"encoding/binary"
	"errors"

	"github.com/ginws/ginws/hub"
)

const codecVersion = 1

var errBadMessage = errors.New("redis broker: malformed message")

// encode packs a message for a Redis channel: version, kind, flags, then
// length-prefixed node, target and except, then the frame as is (no JSON
// around JSON, no base64 around binary frames).
func encode(node string, m hub.Message) []byte {
	target := m.Room
	if m.Kind == hub.ToUser {
		target = m.User
	}
	b := make([]byte, 0, 3+3*binary.MaxVarintLen16+len(node)+len(target)+len(m.Except)+len(m.Payload))
	var flags byte
	if m.Binary {
		flags = 1
	}
	b = append(b, codecVersion, byte(m.Kind), flags)
	for _, s := range []string{node, target, m.Except} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return append(b, m.Payload...)
}

// decode unpacks a message and the node that published it.
func decode(b []byte) (node string, m hub.Message, err error) {
	if len(b) < 3 || b[0] != codecVersion {
		return "", m, errBadMessage
	}
	m.Kind = hub.TargetKind(b[1])
	if m.Kind < hub.ToRoom || m.Kind > hub.ToAll || b[2] > 1 {
		return "", m, errBadMessage
	}
	m.Binary = b[2] == 1
	b = b[3:]
	var fields [3]string
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
	case hub.ToRoom:
		m.Room = fields[1]
	case hub.ToUser:
		m.User = fields[1]
	default:
		if fields[1] != "" {
			return "", m, errBadMessage
		}
	}
	m.Payload = b
	return node, m, nil
}
