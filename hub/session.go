package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Session is one WebSocket connection. Its methods are safe for concurrent
// use; sends never block: a session that cannot keep up is closed with 1013.
type Session struct {
	hub       *Hub
	conn      *websocket.Conn // reads and control frames; data frames go to out
	id        string
	principal atomic.Pointer[Principal] // replaced by a refresh under mu
	refresher Refresher                 // nil: refresh requests are refused
	ctx       *cancelable               // made by Context; guarded by mu
	limiter   *rate.Limiter             // made on the first frame; reader goroutine only
	output    *rate.Limiter             // made on the first large answer; handler goroutine only
	joins     *rate.Limiter             // made on the first join; handler goroutine only
	pingTimer *time.Timer
	expiry    *time.Timer // token.expiring, then 4401; guarded by mu

	// Owned by the read goroutine: rate_limited replies since strikesSince
	// (unix nanoseconds).
	strikes      int32
	strikesSince int64
	// Invalid frames in a row; the handler goroutine updates it too.
	invalid atomic.Int32
	// When set (unix nanoseconds), the read deadline of the closing handshake.
	closeDeadline atomic.Int64

	out outbox // the send side, with a lock of its own

	// mu guards the close state, the frames waiting for the handler
	// goroutine and ctx.
	mu       sync.Mutex
	state    closeState
	handling bool
	noticed  bool // token.expiring was sent for the principal's expiry
	closeErr *CloseError
	in       []incoming
	inBytes  int

	// rooms is guarded by hub.mu.
	rooms map[string]struct{}
}

// ID returns the session's id, unique within the application.
func (s *Session) ID() string { return s.id }

// Principal returns the identity the session authenticated with.
func (s *Session) Principal() Principal { return *s.principal.Load() }

// user is the session's user id, which a refresh never changes.
func (s *Session) user() string { return s.principal.Load().UserID }

// Context returns a context cancelled when the connection closes.
func (s *Session) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Made on first use: an idle session needs none.
	if s.ctx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.ctx = &cancelable{ctx, cancel}
		if s.state == gone {
			cancel()
		}
	}
	return s.ctx
}

// cancelable is a context with its cancel function: one field of a session
// instead of two.
type cancelable struct {
	context.Context
	cancel context.CancelFunc
}

// Emit sends an event to this session only.
func (s *Session) Emit(typ string, data any) error {
	event, err := encodeEvent(typ, "", data)
	if err != nil {
		return err
	}
	return s.out.enqueue(outgoing{data: event})
}

// EmitBinary sends a binary frame to this session only.
func (s *Session) EmitBinary(data []byte) error {
	return s.out.enqueue(outgoing{data: data, binary: true})
}

// Rooms returns the rooms the session has joined.
func (s *Session) Rooms() []string {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// InRoom reports whether the session has joined room.
func (s *Session) InRoom(room string) bool {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	_, ok := s.rooms[room]
	return ok
}
