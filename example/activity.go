package main

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/metrics"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

// window is how many seconds of activity the admin view shows; the ring
// holds one slot per second of it, so memory stays fixed however long the
// server runs.
const window = 300

// maxListedRooms bounds the rooms a snapshot names: under a load test there
// may be thousands, and the view shows the busiest.
const maxListedRooms = 50

// activity passes every event on to the Prometheus metrics and counts it
// in the slot of the current second, for the admin view. Its methods hold a
// mutex for a few additions: fast enough for the hub's hot paths in a demo,
// and they never call the hub.
type activity struct {
	prom  *metrics.Metrics
	start time.Time        // second 0; the monotonic clock orders seconds
	now   func() time.Time // time.Now; tests may move it

	mu     sync.Mutex
	ring   [window]second
	last   int64          // the newest second the ring holds
	conns  int            // sessions open on this node
	rooms  map[string]int // sessions of this node per room; see joined
	active int            // rooms whose count is above 0
}

// second is the activity of one second. The gauges are their level at the
// end of it; a slot starts with the level the previous one ended with.
type second struct {
	connections int
	rooms       int
	deliveries  int // events queued to sessions
	messages    int // frames the clients sent
	errors      int // of those, answered with an error
	closes      map[string]int
}

var (
	_ hub.Observer        = (*activity)(nil)
	_ middleware.Observer = (*activity)(nil)
)

func newActivity(prom *metrics.Metrics) *activity {
	return &activity{prom: prom, start: time.Now(), now: time.Now, rooms: map[string]int{}}
}

// slot returns the current second's slot, first clearing the slots of the
// seconds nothing happened in since the last call. It must be called with
// mu held.
func (a *activity) slot() *second {
	sec := int64(a.now().Sub(a.start) / time.Second)
	if sec < a.last {
		sec = a.last
	}
	// Only the window's seconds need clearing, however long it was quiet.
	a.last = max(a.last, sec-window)
	for a.last < sec {
		a.last++
		s := &a.ring[a.last%window]
		closes := s.closes
		clear(closes)
		*s = second{connections: a.conns, rooms: a.active, closes: closes}
	}
	return &a.ring[sec%window]
}

// SessionOpened implements hub.Observer.
func (a *activity) SessionOpened() {
	a.prom.SessionOpened()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conns++
	a.slot().connections = a.conns
}

// SessionClosed implements hub.Observer. Codes the protocol does not name
// count as "other", as in the metrics, so that peers cannot grow the map.
func (a *activity) SessionClosed(code wire.StatusCode) {
	a.prom.SessionClosed(code)
	label := "other"
	if code.Known() {
		label = code.String()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conns--
	s := a.slot()
	s.connections = a.conns
	if s.closes == nil {
		s.closes = map[string]int{}
	}
	s.closes[label]++
}

// Handled implements hub.Observer.
func (a *activity) Handled(typ string, code wire.Code, d time.Duration) {
	a.prom.Handled(typ, code, d)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.slot()
	s.messages++
	if code != "" {
		s.errors++
	}
}

// Emitted implements hub.Observer.
func (a *activity) Emitted(typ string, recipients int) {
	a.prom.Emitted(typ, recipients)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.slot().deliveries += recipients
}

// RateLimited implements hub.Observer.
func (a *activity) RateLimited() { a.prom.RateLimited() }

// SlowConsumer implements hub.Observer.
func (a *activity) SlowConsumer() { a.prom.SlowConsumer() }

// Published implements hub.Observer.
func (a *activity) Published(d time.Duration, err error) { a.prom.Published(d, err) }

// Refused implements middleware.Observer.
func (a *activity) Refused(code wire.Code) { a.prom.Refused(code) }

// joined and left keep the sessions per room, from hub.Options.OnJoin and
// OnLeave: the hub counts its rooms but does not name them. A session's
// leave may be reported before its join when it disconnects while joining,
// so a count may dip below 0 for a moment; a room is listed while its count
// is above 0 and forgotten when it is back at 0.
func (a *activity) joined(room string) { a.addToRoom(room, 1) }
func (a *activity) left(room string)   { a.addToRoom(room, -1) }

func (a *activity) addToRoom(room string, d int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	before := a.rooms[room]
	after := before + d
	if after == 0 {
		delete(a.rooms, room)
	} else {
		a.rooms[room] = after
	}
	switch {
	case before <= 0 && after > 0:
		a.active++
	case before > 0 && after <= 0:
		a.active--
	}
	a.slot().rooms = a.active
}

// Snapshot is the activity the admin view shows: series of one value per
// second, oldest first, for the last Window seconds (fewer just after a
// start).
type Snapshot struct {
	// Now is the end of the newest second, in Unix milliseconds.
	Now int64 `json:"now"`
	// Window is the number of seconds the series can hold.
	Window int `json:"window"`
	// Connections and Rooms are the gauges at the end of each second; the
	// rest count what happened within it.
	Connections []int `json:"connections"`
	Rooms       []int `json:"rooms"`
	Deliveries  []int `json:"deliveries"`
	Messages    []int `json:"messages"`
	Errors      []int `json:"errors"`
	// Closes has a series per close code seen within the window.
	Closes map[string][]int `json:"closes"`
	// RoomList names the rooms with the most sessions of this node, at
	// most 50 of them; RoomCount counts them all.
	RoomList  []RoomSessions `json:"roomList"`
	RoomCount int            `json:"roomCount"`
}

// RoomSessions is a room and the number of this node's sessions in it.
type RoomSessions struct {
	Room     string `json:"room"`
	Sessions int    `json:"sessions"`
}

// snapshot copies the window out of the ring.
func (a *activity) snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.slot()
	first := max(0, a.last-window+1)
	n := int(a.last - first + 1)
	out := Snapshot{
		Now:         a.start.Add(time.Duration(a.last+1) * time.Second).UnixMilli(),
		Window:      window,
		Connections: make([]int, 0, n), Rooms: make([]int, 0, n), Deliveries: make([]int, 0, n),
		Messages: make([]int, 0, n), Errors: make([]int, 0, n),
		Closes:    map[string][]int{},
		RoomCount: a.active,
	}
	for sec := first; sec <= a.last; sec++ {
		s := &a.ring[sec%window]
		out.Connections = append(out.Connections, s.connections)
		out.Rooms = append(out.Rooms, s.rooms)
		out.Deliveries = append(out.Deliveries, s.deliveries)
		out.Messages = append(out.Messages, s.messages)
		out.Errors = append(out.Errors, s.errors)
		for code, k := range s.closes {
			if out.Closes[code] == nil {
				out.Closes[code] = make([]int, n)
			}
			out.Closes[code][sec-first] = k
		}
	}
	for room, k := range a.rooms {
		if k > 0 {
			out.RoomList = append(out.RoomList, RoomSessions{Room: room, Sessions: k})
		}
	}
	slices.SortFunc(out.RoomList, func(x, y RoomSessions) int {
		return cmp.Or(cmp.Compare(y.Sessions, x.Sessions), cmp.Compare(x.Room, y.Room))
	})
	if len(out.RoomList) > maxListedRooms {
		out.RoomList = out.RoomList[:maxListedRooms]
	}
	return out
}
