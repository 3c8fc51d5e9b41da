package redis

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
)

const codecVersion = 2

// burstVersion starts a burst: the messages one script call published to
// one channel in a row, each as its uvarint length and then its encoded
// form. A node then reads, parses and wakes for a run of events once, and
// Redis publishes it once: with one publisher feeding a room this halved
// the cost of a publication on both ends (see publishBatch).
const burstVersion = 3

var errBadMessage = errors.New("redis broker: malformed message")

// encode packs a message for a Redis channel: version, kind, flags, action,
// then length-prefixed node, target, except, the action's argument (the
// room to join, the close code in decimal, or the replacement key of an
// event to deliver), the history's epoch and the
// offset (decimal; both empty when none), then the payload as is (no JSON
// around JSON, no base64 around binary frames).
func encode(node string, m hub.Message) []byte {
	off := ""
	if m.Offset > 0 {
		off = strconv.FormatUint(m.Offset, 10)
	}
	b := header(node, m)
	for _, s := range []string{m.Epoch, off} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return append(b, m.Payload...)
}

// header is encode's output up to the epoch and offset fields, which the
// history script appends once it knows them.
func header(node string, m hub.Message) []byte {
	target := m.Room
	if m.Kind == hub.TargetUser {
		target = m.User
	}
	b := make([]byte, 0, 5+5*binary.MaxVarintLen16+len(node)+len(target)+len(m.Except)+len(m.Room)+20+len(m.Payload))
	var flags byte
	if m.Binary {
		flags = 1
	}
	b = append(b, codecVersion, byte(m.Kind), flags, byte(m.Action))
	for _, s := range []string{node, target, m.Except, argument(m)} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// argument is the action's argument: the room to join, the close code, or
// the replacement key of an event.
func argument(m hub.Message) string {
	switch m.Action {
	case hub.ActionJoin:
		return m.Room
	case hub.ActionDisconnect:
		return strconv.Itoa(int(m.Code))
	}
	return m.Key
}

// eachMessage calls fn with each message of a channel's payload: a message
// or a burst. Each message is copied out on its own, so that a session
// that holds one event does not hold the rest of its burst. It stops at
// the first malformed message or framing.
func eachMessage(payload string, fn func(node string, m hub.Message)) error {
	if len(payload) == 0 || payload[0] != burstVersion {
		node, m, err := decode([]byte(payload))
		if err == nil {
			fn(node, m)
		}
		return err
	}
	rest := payload[1:]
	if rest == "" {
		return errBadMessage
	}
	for rest != "" {
		n, k := uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return errBadMessage
		}
		node, m, err := decode([]byte(rest[k : k+int(n)]))
		if err != nil {
			return err
		}
		fn(node, m)
		rest = rest[k+int(n):]
	}
	return nil
}

// uvarint reads a length as binary.Uvarint does, in its shortest encoding
// only (one message, one form): k <= 0 when there is none.
func uvarint[T string | []byte](b T) (n uint64, k int) {
	for i := 0; i < len(b) && i < binary.MaxVarintLen64; i++ {
		c := b[i]
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i > 0 && c == 0 || i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -1
			}
			return n, i + 1
		}
	}
	return 0, -1
}

// decode unpacks a message and the node that published it.
func decode(b []byte) (node string, m hub.Message, err error) {
	if len(b) < 4 || b[0] != codecVersion {
		return "", m, errBadMessage
	}
	m.Kind, m.Action = hub.TargetKind(b[1]), hub.Action(b[3])
	// ActionMissed never crosses nodes.
	if m.Kind < hub.TargetRoom || m.Kind > hub.TargetAll || b[2] > 1 || m.Action > hub.ActionJoin {
		return "", m, errBadMessage
	}
	m.Binary = b[2] == 1
	b = b[4:]
	var fields [6]string
	for i := range fields {
		n, k := uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
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
	// Actions are sent by JoinUser and DisconnectUser only: to a user,
	// with nothing but their argument.
	if m.Action != hub.ActionDeliver && (m.Kind != hub.TargetUser || m.Binary || m.Except != "" || fields[4] != "" || fields[5] != "" || len(b) > 0) {
		return "", hub.Message{}, errBadMessage
	}
	switch arg := fields[3]; m.Action {
	case hub.ActionJoin:
		if arg == "" {
			return "", hub.Message{}, errBadMessage
		}
		m.Room = arg
	case hub.ActionDisconnect:
		code, err := strconv.Atoi(arg)
		if err != nil || code < 1000 || code > 4999 || strconv.Itoa(code) != arg {
			return "", hub.Message{}, errBadMessage
		}
		m.Code = wire.StatusCode(code)
	default:
		// Replaceable events carry no offset.
		if arg != "" && fields[5] != "" {
			return "", hub.Message{}, errBadMessage
		}
		m.Key = arg
	}
	// An offset comes with the epoch of its history, and only then.
	if (fields[4] == "") != (fields[5] == "") {
		return "", hub.Message{}, errBadMessage
	}
	m.Epoch = fields[4]
	if fields[5] != "" {
		if m.Offset, err = strconv.ParseUint(fields[5], 10, 64); err != nil || m.Offset == 0 || strconv.FormatUint(m.Offset, 10) != fields[5] {
			return "", hub.Message{}, errBadMessage
		}
	}
	m.Payload = b
	return node, m, nil
}
