package redis

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
)

const codecVersion = 3

var errBadMessage = errors.New("redis broker: malformed message")

// A message on a Redis channel is a run: the events published to one
// channel in a row with one header, or an action. A node reads, parses and
// wakes once for a run, and Redis publishes and keeps it once, whatever
// its length: with AsyncPublish and one publisher feeding a room, Redis
// spends a seventh of what it spent per event before runs, and the nodes a
// third (BenchmarkPublishHistory). It is the header
// (version, kind, flags, action, then length-prefixed node, target,
// except, and the action's argument: the room to join, the close code in
// decimal, or the replacement key of an event), then the history's epoch
// and the first event's offset (decimal; both empty when none), then each
// event's payload as its uvarint length and its bytes (no JSON around
// JSON, no base64 around binary frames); an action has none. The events
// of a run with history have the offsets that follow the first, and their
// payloads get them on the node that reads them (hub.WithOffset).

// header is a run's header, which Go encodes; the history script adds the
// epoch and the offset once it knows them.
func header(node string, m hub.Message) []byte {
	target := m.Room
	if m.Kind == hub.TargetUser {
		target = m.User
	}
	b := make([]byte, 0, 4+4*binary.MaxVarintLen16+len(node)+len(target)+len(m.Except)+len(m.Room)+8)
	var flags byte
	if m.Binary {
		flags = 1
	}
	b = append(b, codecVersion, byte(m.Kind), flags, byte(m.Action))
	for _, s := range []string{node, target, m.Except, argument(m)} {
		b = appendField(b, s)
	}
	return b
}

// encodeRun returns a run without history: its header, no epoch and no
// offset, then its payloads (see pack).
func encodeRun(head, packed []byte) []byte {
	b := make([]byte, 0, len(head)+2+len(packed))
	b = append(append(b, head...), 0, 0)
	return append(b, packed...)
}

// pack returns payloads as a run carries them.
func pack(payloads ...[]byte) []byte {
	n := 0
	for _, p := range payloads {
		n += binary.MaxVarintLen32 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range payloads {
		b = appendField(b, p)
	}
	return b
}

func appendField[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
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

// uvarint reads a length as binary.Uvarint does, in its shortest encoding
// only (one message, one form): k <= 0 when there is none.
func uvarint(b string) (n uint64, k int) {
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

// eachMessage calls fn with each message of a run, in order, and the node
// that published them. Each payload is copied out on its own, so that a
// session that holds one event does not hold the rest of its run. It
// returns errBadMessage, having called fn for none, for a run malformed
// anywhere.
func eachMessage(run string, fn func(node string, m hub.Message)) error {
	node, m, payloads, err := decode(run)
	if err != nil {
		return err
	}
	if m.Action != hub.ActionDeliver {
		fn(node, m)
		return nil
	}
	first := m.Offset
	for i, p := range payloads {
		if first > 0 {
			m.Offset = first + uint64(i)
			m.Payload = hub.WithOffset(p, m.Offset)
		} else {
			m.Payload = []byte(p)
		}
		fn(node, m)
	}
	return nil
}

// decode unpacks a run: its node, its events' common fields (the first's
// offset), and their payloads, which it checks.
func decode(b string) (node string, m hub.Message, payloads []string, err error) {
	if len(b) < 4 || b[0] != codecVersion {
		return "", m, nil, errBadMessage
	}
	m.Kind, m.Action = hub.TargetKind(b[1]), hub.Action(b[3])
	// ActionMissed never crosses nodes.
	if m.Kind < hub.TargetRoom || m.Kind > hub.TargetAll || b[2] > 1 || m.Action > hub.ActionJoin {
		return "", m, nil, errBadMessage
	}
	m.Binary = b[2] == 1
	rest := b[4:]
	var fields [6]string
	for range fields {
		if _, rest, err = field(rest); err != nil {
			return "", m, nil, err
		}
	}
	// The fields outlive the run (a member keeps its room's epoch): they
	// get one copy, apart from the payloads.
	head := strings.Clone(b[4 : len(b)-len(rest)])
	for i := range fields {
		fields[i], head, _ = field(head)
	}
	b = rest
	node, m.Except = fields[0], fields[2]
	switch m.Kind {
	case hub.TargetRoom:
		m.Room = fields[1]
	case hub.TargetUser:
		m.User = fields[1]
	default:
		if fields[1] != "" {
			return "", m, nil, errBadMessage
		}
	}
	// Actions are sent by JoinUser and DisconnectUser only: to a user,
	// with nothing but their argument.
	if m.Action != hub.ActionDeliver && (m.Kind != hub.TargetUser || m.Binary || m.Except != "" || fields[4] != "" || fields[5] != "" || len(b) > 0) {
		return "", hub.Message{}, nil, errBadMessage
	}
	switch arg := fields[3]; m.Action {
	case hub.ActionJoin:
		if arg == "" {
			return "", hub.Message{}, nil, errBadMessage
		}
		m.Room = arg
		return node, m, nil, nil
	case hub.ActionDisconnect:
		code, err := strconv.Atoi(arg)
		if err != nil || code < 1000 || code > 4999 || strconv.Itoa(code) != arg {
			return "", hub.Message{}, nil, errBadMessage
		}
		m.Code = wire.StatusCode(code)
		return node, m, nil, nil
	}
	// Replaceable events carry no offset, and an offset comes with the
	// epoch of its history, and only then.
	m.Key, m.Epoch = fields[3], fields[4]
	if m.Key != "" && fields[5] != "" || (fields[4] == "") != (fields[5] == "") {
		return "", hub.Message{}, nil, errBadMessage
	}
	if fields[5] != "" {
		if m.Offset, err = strconv.ParseUint(fields[5], 10, 64); err != nil || m.Offset == 0 || strconv.FormatUint(m.Offset, 10) != fields[5] {
			return "", hub.Message{}, nil, errBadMessage
		}
	}
	if payloads, err = splitPayloads(b, m.Offset > 0); err != nil {
		return "", hub.Message{}, nil, err
	}
	if m.Offset > math.MaxUint64-uint64(len(payloads)-1) {
		return "", hub.Message{}, nil, errBadMessage // the last offset would wrap
	}
	return node, m, payloads, nil
}

// splitPayloads splits a run's payloads: at least one, and with history
// each an encoded event ({...}), which gets its offset added.
func splitPayloads(b string, history bool) ([]string, error) {
	var payloads []string
	for len(b) > 0 {
		p, rest, err := field(b)
		if err != nil || history && (len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}') {
			return nil, errBadMessage
		}
		payloads, b = append(payloads, p), rest
	}
	if len(payloads) == 0 {
		return nil, errBadMessage
	}
	return payloads, nil
}

// field reads a length-prefixed field.
func field(b string) (string, string, error) {
	n, k := uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", "", errBadMessage
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}
