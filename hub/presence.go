package hub

import (
	"sync"
	"time"
)

// presence coalesces the presence events of rooms (Options.PresenceInterval
// and PresenceBatch). Without it every join reaches every member: a crowd of
// n joining one room at once makes n² events, enough to close members that
// read as slow consumers, and a few sessions joining and leaving in a loop
// keep a large room's members busy.
//
// A room's first change is sent at once and opens a window; changes within
// it wait for its end, where a join and a leave of one session cancel out
// and the rest go out one event each, or as one presence.changed summary
// when there are more than PresenceBatch. A window that closes with changes
// opens the next, so a steady churn reaches members once per interval.
type presence struct {
	h *Hub

	mu      sync.Mutex
	rooms   map[string]*roomPresence
	stopped bool
}

type roomPresence struct {
	changes []presenceChange
	index   map[*Session]int // of each session's pending change
	timer   *time.Timer
}

type presenceChange struct {
	typ string // presence.join or presence.leave; "" once cancelled
	s   *Session
}

func newPresence(h *Hub) *presence {
	return &presence{h: h, rooms: make(map[string]*roomPresence)}
}

// change reports that s joined (presence.join) or left (presence.leave) room.
func (p *presence) change(typ, room string, s *Session) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		p.h.emitPresence(typ, room, s)
		return
	}
	rp := p.rooms[room]
	if rp == nil {
		rp = &roomPresence{}
		rp.timer = time.AfterFunc(p.h.opts.PresenceInterval, func() { p.flush(room) })
		p.rooms[room] = rp
		p.mu.Unlock()
		p.h.emitPresence(typ, room, s)
		return
	}
	defer p.mu.Unlock()
	if i, ok := rp.index[s]; ok && rp.changes[i].typ != typ {
		// The others never saw the first: neither need they the second.
		rp.changes[i].typ = ""
		delete(rp.index, s)
		return
	}
	if rp.index == nil {
		rp.index = make(map[*Session]int)
	}
	rp.index[s] = len(rp.changes)
	rp.changes = append(rp.changes, presenceChange{typ, s})
}

// flush ends a room's window: it sends what changed within it and opens the
// next window, or forgets the room when nothing did.
func (p *presence) flush(room string) {
	p.mu.Lock()
	rp := p.rooms[room]
	if rp == nil {
		p.mu.Unlock()
		return
	}
	var changes []presenceChange
	joined, left := 0, 0
	for _, c := range rp.changes {
		switch c.typ {
		case "presence.join":
			joined++
		case "presence.leave":
			left++
		default:
			continue
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		delete(p.rooms, room)
		if len(p.rooms) == 0 {
			p.rooms = make(map[string]*roomPresence) // a map keeps its peak size
		}
		p.mu.Unlock()
		return
	}
	rp.changes, rp.index = nil, nil
	rp.timer.Reset(p.h.opts.PresenceInterval)
	p.mu.Unlock()

	if len(changes) <= p.h.opts.PresenceBatch {
		for _, c := range changes {
			p.h.emitPresence(c.typ, room, c.s)
		}
		return
	}
	err := p.h.To(room).Ephemeral().Emit("presence.changed", struct {
		Joined int `json:"joined"`
		Left   int `json:"left"`
	}{joined, left})
	if err != nil {
		p.h.reportError(nil, err)
	}
}

// stop ends every window at once, for Shutdown: later changes are sent as
// they come.
func (p *presence) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for room, rp := range p.rooms {
		rp.timer.Stop()
		delete(p.rooms, room)
	}
}

func (h *Hub) emitPresence(typ, room string, s *Session) {
	if err := h.To(room).Except(s).Ephemeral().Emit(typ, Member{User: s.user(), Session: s.id}); err != nil {
		h.reportError(s, err)
	}
}
