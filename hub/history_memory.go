package hub

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// memoryHistory is the HistoryStore of a hub without a broker that keeps one.
// Its rooms share one budget of bytes (Options.HistoryBytes): beyond it the
// least recently used rooms are forgotten, so the memory of history does
// not grow with the number of rooms that ever had an event.
type memoryHistory struct {
	deliver func(Message)
	budget  int64 // <= 0: no budget
	size    atomic.Int64

	mu        sync.Mutex
	rooms     map[string]*ring
	lru       list.List // *ring, most recently used first
	lastSweep time.Time
}

type entry struct {
	offset uint64
	at     time.Time
	event  []byte
}

// The bytes a history keeps besides the frames: an entry (its slot in the
// ring's array and its slice header) and a room (map entry, list element,
// ring, name and epoch). Approximate, so that many tiny events or many
// empty rooms still count.
const (
	entryOverhead = 64
	ringOverhead  = 256
)

// ring is one room's history. Its lock also orders publication: an event
// is delivered while it is held, so offsets reach every session in order.
type ring struct {
	name string
	elem *list.Element // in memoryHistory.lru; guarded by memoryHistory.mu

	mu      sync.Mutex
	epoch   string
	offset  uint64
	last    time.Time // of the newest event, or when the ring was made
	entries []entry   // oldest first, at most Size
	bytes   int64     // charged to memoryHistory.size
	gone    bool      // forgotten: expired or evicted
}

var _ HistoryStore = (*memoryHistory)(nil)

func newMemoryHistory(deliver func(Message), budget int64) *memoryHistory {
	return &memoryHistory{deliver: deliver, budget: budget, rooms: make(map[string]*ring)}
}

// ring returns the room's history locked, creating it (with a new epoch) if
// it is missing or expired, and now and then forgets expired rooms.
func (h *memoryHistory) ring(room string, opts HistoryOptions) *ring {
	for {
		r := h.find(room, opts)
		r.mu.Lock()
		if !r.gone {
			return r
		}
		// Evicted between find and Lock: take the room's new ring.
		r.mu.Unlock()
	}
}

func (h *memoryHistory) find(room string, opts HistoryOptions) *ring {
	now := time.Now()
	ttl := ttlOf(opts)
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(h.lastSweep) > min(ttl, time.Minute) {
		h.lastSweep = now
		for _, r := range h.rooms {
			if r.expired(now, ttl) {
				h.forgetLocked(r)
			}
		}
	}
	r := h.rooms[room]
	if r != nil && r.expired(now, ttl) {
		h.forgetLocked(r)
		r = nil
	}
	if r == nil {
		r = &ring{name: room, epoch: newEpoch(), last: now, bytes: ringOverhead}
		h.size.Add(ringOverhead)
		h.rooms[room] = r
		r.elem = h.lru.PushFront(r)
		// Rooms that are joined and left without an event cost memory
		// too.
		h.evictLocked(r)
	} else {
		h.lru.MoveToFront(r.elem)
	}
	return r
}

// forgetLocked drops a room's history; the caller holds h.mu, not r.mu.
func (h *memoryHistory) forgetLocked(r *ring) {
	delete(h.rooms, r.name)
	h.lru.Remove(r.elem)
	r.mu.Lock()
	r.gone = true
	h.size.Add(-r.bytes)
	r.entries, r.bytes = nil, 0
	r.mu.Unlock()
	if len(h.rooms) == 0 {
		// A map keeps its peak size: start a new one when it empties.
		h.rooms = make(map[string]*ring)
	}
}

// evict forgets the least recently used rooms other than keep while the
// histories are over budget.
func (h *memoryHistory) evict(keep *ring) {
	if h.budget <= 0 || h.size.Load() <= h.budget {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evictLocked(keep)
}

func (h *memoryHistory) evictLocked(keep *ring) {
	if h.budget <= 0 {
		return
	}
	for e := h.lru.Back(); e != nil && h.size.Load() > h.budget; {
		r := e.Value.(*ring)
		e = e.Prev()
		if r != keep {
			h.forgetLocked(r)
		}
	}
}

// expired reports whether the room had no event for ttl; an empty room
// counts from when its ring was made.
func (r *ring) expired(now time.Time, ttl time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.Sub(r.last) > ttl
}

// trim drops entries beyond Size and older than TTL.
func (r *ring) trim(now time.Time, opts HistoryOptions, size *atomic.Int64) {
	drop := 0
	if extra := len(r.entries) - opts.Size; extra > 0 {
		drop = extra
	}
	ttl := ttlOf(opts)
	for drop < len(r.entries) && now.Sub(r.entries[drop].at) > ttl {
		drop++
	}
	if drop > 0 {
		var n int64
		for _, e := range r.entries[:drop] {
			n += int64(len(e.event) + entryOverhead)
		}
		r.bytes -= n
		size.Add(-n)
		clear(r.entries[:drop])
		r.entries = append(r.entries[:0], r.entries[drop:]...)
	}
}

func (h *memoryHistory) PublishHistory(_ context.Context, m Message, opts HistoryOptions) error {
	r := h.ring(m.Room, opts)
	r.offset++
	m.Offset, m.Epoch = r.offset, r.epoch
	m.Payload = WithOffset(m.Payload, m.Offset)
	now := time.Now()
	r.entries = append(r.entries, entry{offset: m.Offset, at: now, event: m.Payload})
	r.last = now
	n := int64(len(m.Payload) + entryOverhead)
	r.bytes += n
	h.size.Add(n)
	r.trim(now, opts, &h.size)
	h.deliver(m)
	r.mu.Unlock()
	h.evict(r)
	return nil
}

func (h *memoryHistory) Since(_ context.Context, room string, since Position, opts HistoryOptions) ([][]byte, Position, bool, error) {
	r := h.ring(room, opts)
	defer r.mu.Unlock()
	r.trim(time.Now(), opts, &h.size)
	now := Position{Epoch: r.epoch, Offset: r.offset}
	if since.Epoch != r.epoch || since.Offset > r.offset {
		return nil, now, false, nil
	}
	missed := int(r.offset - since.Offset)
	if missed > len(r.entries) {
		return nil, now, false, nil
	}
	return r.events(len(r.entries) - missed), now, true, nil
}

func (h *memoryHistory) Latest(_ context.Context, room string, n int, opts HistoryOptions) ([][]byte, Position, error) {
	r := h.ring(room, opts)
	defer r.mu.Unlock()
	r.trim(time.Now(), opts, &h.size)
	from := len(r.entries) - min(max(n, 0), len(r.entries))
	return r.events(from), Position{Epoch: r.epoch, Offset: r.offset}, nil
}

func (r *ring) events(from int) [][]byte {
	out := make([][]byte, 0, len(r.entries)-from)
	for _, e := range r.entries[from:] {
		out = append(out, e.event)
	}
	return out
}
