package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ginws/ginws/validate"
)

type room struct {
	name    string
	opts    RoomOptions
	members map[*Session]struct{}
}

// Member is one session present in a room.
type Member struct {
	User    string `json:"user"`
	Session string `json:"session"`
}

type joinRequest struct {
	Since *struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	} `json:"since"`
}

type joinAck struct {
	Room      string `json:"room"`
	Members   int    `json:"members"`
	Epoch     string `json:"epoch"`
	Offset    uint64 `json:"offset"`
	Recovered bool   `json:"recovered"`
}

func needRoom(c *Context) error {
	if c.room == "" {
		return &Error{Code: CodeBadRequest, Message: c.typ + " needs a room"}
	}
	return nil
}

// join adds the session to a room. The returned function, run after the ack
// is queued, tells the others: the joiner's view is complete first.
func (h *Hub) join(c *Context, data json.RawMessage) (any, func(), error) {
	if err := needRoom(c); err != nil {
		return nil, nil, err
	}
	if len(data) > 0 {
		if _, err := validate.Decode[joinRequest](h.opts.Validator, data); err != nil {
			return nil, nil, err
		}
	}
	if h.opts.JoinPolicy != nil {
		if _, err := h.safeCall(c, func() (any, error) { return nil, h.opts.JoinPolicy(c, c.room) }); err != nil {
			return nil, nil, asForbidden(err)
		}
	}
	s := c.session
	h.mu.Lock()
	if s.isGone() {
		h.mu.Unlock()
		return nil, nil, ErrSessionClosed
	}
	r := h.rooms[c.room]
	first := r == nil
	if first {
		opts := RoomOptions{}
		if h.opts.Rooms != nil {
			opts = h.opts.Rooms(c.room)
		}
		r = &room{name: c.room, opts: opts, members: make(map[*Session]struct{})}
		h.rooms[c.room] = r
	}
	_, already := r.members[s]
	r.members[s] = struct{}{}
	s.rooms[c.room] = struct{}{}
	n := len(r.members)
	h.mu.Unlock()

	if first {
		if err := h.broker.Subscribe(context.Background(), c.room); err != nil {
			h.reportError(s, err)
		}
	}
	if ps, ok := h.broker.(PresenceStore); ok {
		if !already {
			if err := ps.AddMember(c, c.room, Member{User: s.principal.UserID, Session: s.id}); err != nil {
				h.reportError(s, err)
			}
		}
		if members, err := ps.Members(c, c.room); err == nil {
			n = len(members)
		}
	}
	ack := joinAck{Room: c.room, Members: n}
	if already {
		return ack, nil, nil
	}
	return ack, func() {
		if r.opts.Presence {
			h.emitPresence("presence.join", c.room, s)
		}
		if h.opts.OnJoin != nil {
			h.opts.OnJoin(s, c.room)
		}
	}, nil
}

func (s *Session) isGone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone
}

func (h *Hub) leaveRequest(c *Context) (any, error) {
	if err := needRoom(c); err != nil {
		return nil, err
	}
	if !h.leave(c.session, c.room) {
		return nil, ErrNotMember
	}
	return nil, nil
}

// leave removes s from room, deleting the room when it empties. It reports
// whether s was a member.
func (h *Hub) leave(s *Session, name string) bool {
	h.mu.Lock()
	r := h.rooms[name]
	if r == nil {
		h.mu.Unlock()
		return false
	}
	if _, ok := r.members[s]; !ok {
		h.mu.Unlock()
		return false
	}
	delete(r.members, s)
	delete(s.rooms, name)
	empty := len(r.members) == 0
	if empty {
		delete(h.rooms, name)
	}
	h.mu.Unlock()

	if empty {
		if err := h.broker.Unsubscribe(context.Background(), name); err != nil {
			h.reportError(s, err)
		}
	}
	if ps, ok := h.broker.(PresenceStore); ok {
		if err := ps.RemoveMember(context.Background(), name, Member{User: s.principal.UserID, Session: s.id}); err != nil {
			h.reportError(s, err)
		}
	}
	if r.opts.Presence {
		h.emitPresence("presence.leave", name, s)
	}
	if h.opts.OnLeave != nil {
		h.opts.OnLeave(s, name)
	}
	return true
}

func (h *Hub) emitPresence(typ, room string, s *Session) {
	if err := h.To(room).Except(s).Emit(typ, Member{User: s.principal.UserID, Session: s.id}); err != nil {
		h.reportError(s, err)
	}
}

func (h *Hub) presence(c *Context) (any, error) {
	if err := needRoom(c); err != nil {
		return nil, err
	}
	if !c.session.InRoom(c.room) {
		return nil, ErrNotMember
	}
	members, err := h.Members(c, c.room)
	if err != nil {
		return nil, err
	}
	return struct {
		Room    string   `json:"room"`
		Members []Member `json:"members"`
	}{c.room, members}, nil
}

// Members lists the sessions present in a room: on every node when the
// broker keeps presence (a PresenceStore, as the Redis broker does), else on
// this node.
func (h *Hub) Members(ctx context.Context, room string) ([]Member, error) {
	if ps, ok := h.broker.(PresenceStore); ok {
		members, err := ps.Members(ctx, room)
		if err != nil {
			return nil, fmt.Errorf("hub: presence of %q: %w", room, err)
		}
		return members, nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.rooms[room]
	if r == nil {
		return []Member{}, nil
	}
	out := make([]Member, 0, len(r.members))
	for s := range r.members {
		out = append(out, Member{User: s.principal.UserID, Session: s.id})
	}
	return out, nil
}

// Rooms returns the number of rooms with at least one member on this node.
func (h *Hub) Rooms() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.rooms)
}

// Target is a set of recipients: a room, a user's sessions, or everyone.
// Build one with Hub.To, Hub.ToUser or Hub.All.
type Target struct {
	h      *Hub
	kind   TargetKind
	name   string
	except *Session
}

// To addresses the members of a room, on every node.
func (h *Hub) To(room string) Target { return Target{h: h, kind: ToRoom, name: room} }

// ToUser addresses every session of a user (all their tabs), on every node.
func (h *Hub) ToUser(user string) Target { return Target{h: h, kind: ToUser, name: user} }

// All addresses every session, on every node.
func (h *Hub) All() Target { return Target{h: h, kind: ToAll} }

// Except leaves one session out (typically the sender).
func (t Target) Except(s *Session) Target {
	t.except = s
	return t
}

// Emit encodes the event once and queues the same bytes to every recipient.
// Events to a room carry the room's name. It returns an encoding error, or
// the broker's error when other nodes could not be reached (local
// recipients have their copy then).
func (t Target) Emit(typ string, data any) error {
	room := ""
	if t.kind == ToRoom {
		room = t.name
	}
	frame, err := eventFrame(typ, room, data)
	if err != nil {
		return err
	}
	return t.send(frame, false)
}

// EmitBinary sends data as a binary frame to every recipient.
func (t Target) EmitBinary(data []byte) error { return t.send(data, true) }

func (t Target) send(frame []byte, binary bool) error {
	m := Message{Kind: t.kind, Binary: binary, Payload: frame}
	switch t.kind {
	case ToRoom:
		m.Room = t.name
	case ToUser:
		m.User = t.name
	}
	if t.except != nil {
		m.Except = t.except.id
	}
	t.h.deliver(m)
	if err := t.h.broker.Publish(context.Background(), m); err != nil {
		return errors.Join(errors.New("hub: publish to other nodes"), err)
	}
	return nil
}

// deliver queues a message to this node's recipients. It costs O(recipients):
// rooms and users are indexed, never found by scanning all sessions.
func (h *Hub) deliver(m Message) {
	f := outFrame{data: m.Payload, binary: m.Binary}
	h.mu.RLock()
	defer h.mu.RUnlock()
	var set map[*Session]struct{}
	switch m.Kind {
	case ToRoom:
		if r := h.rooms[m.Room]; r != nil {
			set = r.members
		}
	case ToUser:
		set = h.users[m.User]
	case ToAll:
		set = h.sessions
	}
	for s := range set {
		if m.Except == "" || s.id != m.Except {
			// enqueue never blocks and runs no application code, so it
			// may run under the read lock.
			_ = s.enqueue(f)
		}
	}
}
