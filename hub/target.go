package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Target is a set of recipients: a room, a user's sessions, or everyone.
// Build one with Hub.To, Hub.ToUser or Hub.All.
type Target struct {
	h         *Hub
	kind      TargetKind
	name      string
	except    *Session
	ephemeral bool
	latest    string
}

// To addresses the members of a room, on every node.
func (h *Hub) To(room string) Target { return Target{h: h, kind: TargetRoom, name: room} }

// ToUser addresses every session of a user (all their tabs), on every node.
func (h *Hub) ToUser(user string) Target { return Target{h: h, kind: TargetUser, name: user} }

// All addresses every session, on every node.
func (h *Hub) All() Target { return Target{h: h, kind: TargetAll} }

// Except leaves one session out (typically the sender).
func (t Target) Except(s *Session) Target {
	t.except = s
	return t
}

// Ephemeral marks events that a room with history must not keep (typing
// indicators, say): they carry no offset and are not replayed.
func (t Target) Ephemeral() Target {
	t.ephemeral = true
	return t
}

// Latest marks the events as replaceable by key, for feeds where only the
// newest value counts (a price, a gauge, a cursor): while an event with the
// key, sent to the same target (room, user or everyone), waits in a
// session's queue, a newer one takes its place instead of queueing behind
// it. A reader slower than the feed gets the newest value of every key,
// each key's values in order, and is not closed for falling behind as long
// as its queue holds one event per key (SendQueueFrames and
// SendQueueBytes). As it takes the place of the event it replaces, it may
// arrive before events of other kinds sent after that one. Replaceable
// events are ephemeral: a room's history does not keep them. An empty key
// marks nothing.
func (t Target) Latest(key string) Target {
	t.latest = key
	return t
}

// Emit encodes the event once and queues the same bytes to every recipient.
// Events to a room carry the room's name and, in a room with history, the
// next offset. It returns an encoding error, or the broker's error when
// other nodes could not be reached (local recipients have their copy then,
// except in a room with history on a broker that keeps it: an event that
// cannot get an offset is not sent at all).
func (t Target) Emit(typ string, data any) error {
	room := ""
	if t.kind == TargetRoom {
		room = t.name
	}
	event, err := encodeEvent(typ, room, data)
	if err != nil {
		return err
	}
	return t.send(event, false)
}

// EmitBinary sends data as a binary frame to every recipient. Binary frames
// are never kept in history.
func (t Target) EmitBinary(data []byte) error {
	t.ephemeral = true
	return t.send(data, true)
}

func (t Target) send(payload []byte, binary bool) error {
	m := Message{Kind: t.kind, Binary: binary, Payload: payload, Key: t.latest}
	switch t.kind {
	case TargetRoom:
		m.Room = t.name
	case TargetUser:
		m.User = t.name
	}
	if t.except != nil {
		m.Except = t.except.id
	}
	if t.kind == TargetRoom && !t.ephemeral && t.latest == "" {
		if hist := t.h.roomOptions(t.name).History; hist.Size > 0 {
			start := time.Now()
			err := t.h.history.PublishHistory(context.Background(), m, hist)
			t.h.obs.Published(time.Since(start), err)
			if err != nil {
				return fmt.Errorf("hub: publish to room %q with history: %w", t.name, err)
			}
			return nil
		}
	}
	return t.h.publish(context.Background(), m)
}

// publish delivers m to this node's recipients and sends it to the other
// nodes: events and actions (DisconnectUser, JoinUser) alike.
func (h *Hub) publish(ctx context.Context, m Message) error {
	h.deliver(m)
	start := time.Now()
	err := h.broker.Publish(ctx, m)
	h.obs.Published(time.Since(start), err)
	if err != nil {
		return errors.Join(errors.New("hub: publish to other nodes"), err)
	}
	return nil
}

// deliver queues a message to this node's recipients. It costs O(recipients):
// rooms and users are indexed, never found by scanning all sessions.
func (h *Hub) deliver(m Message) {
	if m.Action != ActionDeliver {
		h.deliverAction(m)
		return
	}
	f := outgoing{data: m.Payload, binary: m.Binary, offset: m.Offset}
	// A key with an offset would break the room's sequence: brokers never
	// send one (Message.Key), and it is ignored.
	if c := h.opts.Compression; m.Key != "" && m.Offset == 0 || c.Enabled && len(f.data) >= c.MinSize {
		f.shared = &shared{key: replacementKey(m)}
	}
	n := 0
	h.mu.RLock()
	defer func() {
		h.mu.RUnlock()
		if _, none := h.obs.(nopObserver); !none {
			h.obs.Emitted(eventType(m), n)
		}
	}()
	// enqueue never blocks and runs no application code, so it may run
	// under the read lock.
	switch m.Kind {
	case TargetRoom:
		if r := h.rooms[m.Room]; r != nil {
			for s, st := range r.members {
				if m.Except != "" && s.id == m.Except {
					continue
				}
				if f.offset > 0 {
					if st.joining {
						st.pending = append(st.pending, f)
						continue
					}
					// An offset seen already is a duplicate from the
					// join's replay, unless the history is another
					// one: it expired while the member stayed (a quiet
					// room past its TTL) or another Redis master took
					// it over. The client learns of the new epoch when
					// it resumes.
					if m.Epoch != st.epoch {
						st.epoch, st.last = m.Epoch, 0
					}
					if f.offset <= st.last {
						continue
					}
					st.last = f.offset
				}
				_ = s.out.enqueue(f)
				n++
			}
		}
	case TargetUser:
		n = h.enqueueAll(h.users[m.User], m.Except, f)
	case TargetAll:
		n = h.enqueueAll(h.sessions, m.Except, f)
	}
}

// replacementKey scopes a replaceable event's key to its target: an event
// to one room never replaces one to another that a session also gets.
func replacementKey(m Message) string {
	if m.Key == "" || m.Offset > 0 {
		return ""
	}
	name := m.Room
	if m.Kind == TargetUser {
		name = m.User
	}
	// The name's length keeps names and keys apart whatever they hold.
	return string(rune('0'+m.Kind)) + strconv.Itoa(len(name)) + ":" + name + m.Key
}

func (h *Hub) enqueueAll(set map[*Session]struct{}, except string, f outgoing) int {
	n := 0
	for s := range set {
		if except == "" || s.id != except {
			_ = s.out.enqueue(f)
			n++
		}
	}
	return n
}

// eventType reads the type back from an event encodeEvent encoded
// ({"type":"...), without decoding it.
func eventType(m Message) string {
	if m.Binary {
		return "binary"
	}
	const prefix = `{"type":"`
	p := m.Payload
	if len(p) > len(prefix) && string(p[:len(prefix)]) == prefix {
		p = p[len(prefix):]
		if i := bytes.IndexByte(p, '"'); i > 0 {
			return string(p[:i])
		}
	}
	return "unknown"
}
