package hub

import (
	"context"
	"encoding/json"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/ginws/ginws/validate"
	"github.com/ginws/ginws/wire"
)

type room struct {
	opts    RoomOptions
	members map[*Session]*member
}

// member is a session's state in a room. While a session joins a room with
// history, events with an offset wait in pending, so that none is lost or
// repeated between the replay of missed events and live delivery. Only the
// room's ordered history path appends to pending, and join finishes under
// the hub's write lock.
type member struct {
	joining bool
	// announced: presence.join and OnJoin were sent for this join, so
	// presence.leave and OnLeave are when it ends; a join that ends before
	// it was answered (the session closed during its replay) was never
	// announced, and its end is not either.
	announced bool
	pending   []outgoing
	// last is the newest offset this session got in the room, of the
	// history epoch: an event that was replayed and also arrives live is
	// dropped, not sent twice.
	last  uint64
	epoch string
}

// Member is one session present in a room.
type Member struct {
	User    string `json:"user"`
	Session string `json:"session"`
}

type joinRequest struct {
	Since *Position `json:"since"`
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
		return &Error{Code: wire.CodeBadRequest, Message: c.typ + " needs a room"}
	}
	return nil
}

// allowJoin applies Options.JoinRate to a join or leave: each costs the
// room's subscription, presence and maybe a history read, on every node.
// It runs on the session's handler goroutine.
func (h *Hub) allowJoin(s *Session) error {
	if h.opts.JoinRate <= 0 {
		return nil
	}
	if s.joins == nil {
		// A reconnecting client leaves and joins all its rooms at once.
		s.joins = rate.NewLimiter(rate.Limit(h.opts.JoinRate), 2*max(h.opts.MaxRooms, DefaultMaxRooms))
	}
	if !s.joins.Allow() {
		return &Error{Code: wire.CodeRateLimited, Message: "too many joins and leaves; slow down"}
	}
	return nil
}

// join adds the session to a room and answers it itself: in a room with
// history the ack must be queued after the replayed events and before the
// live ones, under the hub's lock. The returned function, run after the
// ack, tells the others: the joiner's view is complete first.
func (h *Hub) join(c *Context, data json.RawMessage) (func(), error) {
	if err := needRoom(c); err != nil {
		return nil, err
	}
	// JoinRate and JoinPolicy are for the client's requests, not for the
	// application's joins (JoinUser).
	if !c.server {
		if err := h.allowJoin(c.session); err != nil {
			return nil, err
		}
	}
	var req joinRequest
	if len(data) > 0 {
		var err error
		if req, err = validate.Decode[joinRequest](h.opts.Validator, data); err != nil {
			return nil, err
		}
	}
	if h.opts.JoinPolicy != nil && !c.server {
		if _, err := h.safeCall(c, func() (any, error) { return nil, h.opts.JoinPolicy(c, c.room) }); err != nil {
			return nil, asForbidden(err)
		}
	}
	s := c.session
	opts := h.roomOptions(c.room)
	hist := opts.History.Size > 0
	h.mu.Lock()
	if s.isGone() {
		h.mu.Unlock()
		return nil, ErrSessionClosed
	}
	r := h.rooms[c.room]
	if h.opts.MaxRooms > 0 && len(s.rooms) >= h.opts.MaxRooms && (r == nil || r.members[s] == nil) {
		h.mu.Unlock()
		return nil, ErrTooManyRooms
	}
	first := r == nil
	if first {
		r = &room{opts: opts, members: make(map[*Session]*member)}
		h.rooms[c.room] = r
	}
	_, already := r.members[s]
	if !already {
		r.members[s] = &member{joining: hist}
		if s.rooms == nil { // most sessions join nothing or one room: allocate late
			s.rooms = make(map[string]struct{}, 1)
		}
		s.rooms[c.room] = struct{}{}
	}
	n := len(r.members)
	h.mu.Unlock()

	// Subscribed before history is read: an event published meanwhile is
	// in the history or in pending, maybe both, never in neither.
	if err := h.syncRoom(c.room); err != nil {
		h.reportError(s, err)
	}
	if ps, ok := h.broker.(PresenceStore); ok {
		if !already {
			if err := ps.AddMember(c, c.room, Member{User: s.user(), Session: s.id}); err != nil {
				h.reportError(s, err)
			}
		}
		if mc, ok := ps.(MemberCounter); ok {
			if count, err := mc.CountMembers(c, c.room); err == nil {
				n = count
			}
		} else if members, err := ps.Members(c, c.room); err == nil {
			n = len(members)
		}
	}
	ack := joinAck{Room: c.room, Members: n}
	var replay [][]byte
	if hist {
		var now Position
		var err error
		// A member joining again has had everything: no replay.
		if req.Since != nil && !already {
			replay, now, ack.Recovered, err = h.history.Since(c, c.room, *req.Since, opts.History)
		} else {
			_, now, err = h.history.Latest(c, c.room, 0, opts.History)
		}
		if err != nil {
			// Without history the client is told it cannot recover.
			h.reportError(s, fmt.Errorf("hub: history of %q: %w", c.room, err))
			replay, ack.Recovered = nil, false
		}
		ack.Epoch, ack.Offset = now.Epoch, now.Offset
	}

	if err := h.finishJoin(c, r, replay, &ack); err != nil {
		if !already {
			h.leave(s, c.room)
		}
		return nil, err
	}
	if already {
		return nil, nil
	}
	return func() {
		h.mu.Lock()
		m := r.members[s]
		if m != nil {
			m.announced = true
		}
		h.mu.Unlock()
		if m == nil {
			return // it left already, unannounced
		}
		if r.opts.Presence {
			h.presences.change("presence.join", c.room, s)
		}
		if h.opts.OnJoin != nil {
			h.opts.OnJoin(s, c.room)
		}
	}, nil
}

// joined answers a join with an ack, or, for a join the application made
// (JoinUser), tells the client with a room.joined event.
func (h *Hub) joined(c *Context, ack joinAck) {
	if !c.server {
		h.answer(c, ack, nil)
		return
	}
	if event, err := encodeEvent("room.joined", c.room, ack); err == nil {
		_ = c.session.out.enqueue(outgoing{data: event})
	}
}

// finishJoin queues the replayed events, then the events published while
// the session joined (pending), then the ack, which says the newest offset
// the session has. Long replays are paced by what the peer reads; the last
// step runs under the hub's lock, so that no live event slips in between.
func (h *Hub) finishJoin(c *Context, r *room, replay [][]byte, ack *joinAck) error {
	s := c.session
	n := 0
	for _, f := range replay {
		n += len(f)
	}
	s.charge(n)
	for _, f := range replay {
		if err := s.out.enqueueWait(c, outgoing{data: f}); err != nil {
			return err
		}
	}
	for {
		h.mu.Lock()
		m := r.members[s]
		if m == nil || !m.joining {
			if m != nil && m.epoch == ack.Epoch && m.last > ack.Offset {
				// A member joining again (JoinUser, say) has had the
				// events that came after the history was read.
				ack.Offset = m.last
			}
			h.joined(c, *ack)
			h.mu.Unlock()
			return nil
		}
		pending := m.pending
		if len(pending) <= h.opts.SendQueueFrames/4 {
			for _, f := range pending {
				if f.offset > ack.Offset {
					_ = s.out.enqueue(f)
					ack.Offset = f.offset
				}
			}
			m.joining, m.pending, m.last, m.epoch = false, nil, ack.Offset, ack.Epoch
			h.joined(c, *ack)
			h.mu.Unlock()
			return nil
		}
		m.pending = nil
		h.mu.Unlock()
		for _, f := range pending {
			if f.offset > ack.Offset {
				if err := s.out.enqueueWait(c, f); err != nil {
					return err
				}
				ack.Offset = f.offset
			}
		}
	}
}

func (h *Hub) leaveRequest(c *Context) (any, error) {
	if err := needRoom(c); err != nil {
		return nil, err
	}
	// JoinRate and JoinPolicy are for the client's requests, not for the
	// application's joins (JoinUser).
	if !c.server {
		if err := h.allowJoin(c.session); err != nil {
			return nil, err
		}
	}
	if !h.leave(c.session, c.room) {
		return nil, ErrNotMember
	}
	return nil, nil
}

// leave removes s from room, deleting the room when it empties, and tells
// the room (presence.leave) and OnLeave if its join was announced. It
// reports whether s was a member.
func (h *Hub) leave(s *Session, name string) bool {
	h.mu.Lock()
	r := h.rooms[name]
	if r == nil {
		h.mu.Unlock()
		return false
	}
	m, ok := r.members[s]
	if !ok {
		h.mu.Unlock()
		return false
	}
	announced := m.announced
	delete(r.members, s)
	delete(s.rooms, name)
	empty := len(r.members) == 0
	if empty {
		delete(h.rooms, name)
		if len(h.rooms) == 0 {
			// A map keeps its peak size: after a crowd of rooms has
			// gone, start a new one.
			h.rooms = make(map[string]*room)
		}
	}
	h.mu.Unlock()

	if empty {
		if err := h.syncRoom(name); err != nil {
			h.reportError(s, err)
		}
	}
	if ps, ok := h.broker.(PresenceStore); ok {
		if err := ps.RemoveMember(context.Background(), name, Member{User: s.user(), Session: s.id}); err != nil {
			h.reportError(s, err)
		}
	}
	if !announced {
		return true
	}
	if r.opts.Presence {
		h.presences.change("presence.leave", name, s)
	}
	if h.opts.OnLeave != nil {
		h.opts.OnLeave(s, name)
	}
	return true
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
// this node. A name no session could join is refused with ErrBadName, so
// that an application passing on a name from a request need not know the
// rule.
func (h *Hub) Members(ctx context.Context, room string) ([]Member, error) {
	if !validName(room, 128, true) {
		return nil, fmt.Errorf("%w: room %q", ErrBadName, room)
	}
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
		out = append(out, Member{User: s.user(), Session: s.id})
	}
	return out, nil
}

// Rooms returns the number of rooms with at least one member on this node.
func (h *Hub) Rooms() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.rooms)
}
