package hub

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/ginws/ginws/internal/sock"
	"github.com/ginws/ginws/internal/wsframe"
)

// Session is one WebSocket connection. Its methods are safe for concurrent
// use; sends never block: a session that cannot keep up is closed with 1013.
type Session struct {
	hub       *Hub
	conn      *websocket.Conn // reads and control frames; data frames go to sock
	socket    *sock.Conn
	id        string
	principal Principal
	ctx       context.Context // made by Context; guarded by mu
	cancel    context.CancelFunc
	limiter   *rate.Limiter // made on the first frame; reader goroutine only
	output    *rate.Limiter // made on the first large answer; handler goroutine only
	joins     *rate.Limiter // made on the first join; handler goroutine only
	pingTimer *time.Timer
	expiry    *time.Timer
	release   func() // frees the user's session slot

	// Owned by the read goroutine: rate_limited replies since strikesSince.
	strikes      int
	strikesSince time.Time
	// Invalid frames in a row; the handler goroutine updates it too.
	invalid atomic.Int32
	// When set (unix nanoseconds), the read deadline of the closing handshake.
	closeDeadline atomic.Int64

	mu       sync.Mutex
	out      []outFrame // queued, not yet taken by the writer
	spare    []outFrame // the writer's previous batch, reused
	outBytes int        // queued, being written and in the socket's backlog
	outCount int
	backlog  int  // bytes of the last batch, charged until the socket's backlog drains
	pongAt   int  // 1 + the index in out of the Pong not yet taken, or 0
	writing  bool // the session has a turn coming, is in one or waits for its socket
	queued   bool // a turn is coming (see writers)
	urgent   bool // ... ahead of the sessions with only events
	answers  bool // out holds an urgent frame
	state    closeState
	closeErr *CloseError
	in       []inFrame
	inBytes  int
	handling bool
	// space is signalled when the writer has written a batch, for
	// enqueueWait, which makes it: most sessions never need it.
	space chan struct{}

	// rooms is guarded by hub.mu.
	rooms map[string]struct{}
}

type outFrame struct {
	data   []byte
	offset uint64
	binary bool
	// raw frames (plain-text pong) are never merged into an array frame.
	raw bool
	// control is the opcode of a control frame (a Pong), else 0.
	control byte
	// urgent frames (answers) move the session's turn ahead of events.
	urgent bool
}

type inFrame struct {
	env    envelope
	binary []byte
	size   int // bytes charged to MaxPendingBytes
}

// ID returns the session's id, unique within the application.
func (s *Session) ID() string { return s.id }

// Principal returns the identity the session authenticated with.
func (s *Session) Principal() Principal { return s.principal }

// Context returns a context cancelled when the connection closes.
func (s *Session) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Made on first use: an idle session needs none.
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.state == gone {
			s.cancel()
		}
	}
	return s.ctx
}

// Emit sends an event to this session only.
func (s *Session) Emit(typ string, data any) error {
	frame, err := eventFrame(typ, "", data)
	if err != nil {
		return err
	}
	return s.enqueue(outFrame{data: frame})
}

// EmitBinary sends a binary frame to this session only.
func (s *Session) EmitBinary(data []byte) error {
	return s.enqueue(outFrame{data: data, binary: true})
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

// open ends the hold a session starts in (writing is set, so that the
// welcome, queued before the session was registered, goes out first as
// PROTOCOL.md says) and writes what is queued from the calling goroutine:
// the welcome answers the connection.
func (s *Session) open() {
	s.mu.Lock()
	s.queued = true
	s.mu.Unlock()
	s.turn()
}

// enqueue adds a frame to the send queue, starting the writer if needed.
func (s *Session) enqueue(f outFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state >= discarding {
		return ErrSessionClosed
	}
	if f.control == websocket.PongMessage && s.pongAt > 0 {
		// Only the newest Ping needs an answer (RFC 6455 section 5.5.3):
		// a Ping flood costs one queued Pong.
		p := &s.out[s.pongAt-1]
		s.outBytes += len(f.data) - len(p.data)
		p.data = f.data
		return nil
	}
	o := &s.hub.opts
	if s.outCount+1 > o.SendQueueFrames || s.outBytes+len(f.data) > o.SendQueueBytes {
		s.startCloseLocked(CloseSlowConsumer, "slow_consumer", true)
		return ErrSessionClosed
	}
	if f.control == websocket.PongMessage {
		s.pongAt = len(s.out) + 1
	}
	s.out = append(s.out, f)
	s.outBytes += len(f.data)
	s.outCount++
	s.answers = s.answers || f.urgent
	s.kickLocked(f.urgent)
	return nil
}

// enqueueWait queues a frame like enqueue but, instead of overflowing,
// waits while the queue is more than half full: a long replay of missed
// events, or a large answer, is paced by what the peer reads. A peer that reads nothing for
// WriteTimeout is closed with 1013.
func (s *Session) enqueueWait(ctx context.Context, f outFrame) error {
	o := &s.hub.opts
	for {
		s.mu.Lock()
		if s.state >= discarding {
			s.mu.Unlock()
			return ErrSessionClosed
		}
		if s.outCount < o.SendQueueFrames/2 && s.outBytes+len(f.data) <= o.SendQueueBytes/2 || s.outCount == 0 {
			s.mu.Unlock()
			return s.enqueue(f)
		}
		if s.space == nil {
			s.space = make(chan struct{}, 1)
		}
		space := s.space
		s.mu.Unlock()
		t := time.NewTimer(o.WriteTimeout)
		select {
		case <-space:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			s.mu.Lock()
			s.startCloseLocked(CloseSlowConsumer, "slow_consumer", true)
			s.mu.Unlock()
			return ErrSessionClosed
		}
	}
}

// kickLocked gives the session a turn with the hub's writers, unless it has
// one coming, is in one or waits for its socket; an urgent frame (an answer)
// moves a coming turn ahead of the sessions that only have events.
func (s *Session) kickLocked(urgent bool) {
	switch {
	case !s.writing:
		s.writing, s.queued, s.urgent = true, true, urgent
		s.hub.writers.push(s, urgent)
	case urgent && s.queued && !s.urgent:
		// The earlier entry is skipped when its turn comes (see turn).
		s.urgent = true
		s.hub.writers.push(s, true)
	}
}

// turn writes everything queued to the session, or its close frame, with one
// write that does not wait for the peer. The hub's writers call it; one turn
// runs at a time per session.
func (s *Session) turn() (events int) {
	s.mu.Lock()
	if !s.queued {
		// This turn was taken already: an entry moved ahead, or the
		// handler's goroutine (writeAnswers).
		s.mu.Unlock()
		return 0
	}
	s.queued, s.urgent = false, false
	if s.state >= discarding {
		s.dropQueueLocked()
	}
	if len(s.out) == 0 {
		if s.state == discarding || s.state == draining && !s.handling {
			// writing stays true: no turn comes after the close frame.
			s.state = closeSent
			ce := *s.closeErr
			s.mu.Unlock()
			s.writeClose(ce)
			return 0
		}
		s.writing = false
		s.mu.Unlock()
		return 0
	}
	batch := s.out
	s.out = s.spare[:0]
	s.answers = false
	s.pongAt = 0
	s.mu.Unlock()

	err := s.writeBatch(batch)

	n := 0
	for _, f := range batch {
		n += len(f.data)
	}
	clear(batch)
	s.mu.Lock()
	s.outCount -= len(batch)
	s.spare = batch[:0]
	// What waits in the socket's backlog stays charged to the session
	// until the peer has taken it; requeue releases it.
	parked := err == nil && s.socket.Park()
	if parked {
		s.backlog = n
	} else {
		s.outBytes -= n
	}
	space := s.space
	s.mu.Unlock()
	if !parked {
		signal(space)
	}
	if err != nil {
		s.writeFailed(err)
		return len(batch)
	}
	if !parked { // else the socket's flusher calls requeue once the peer has caught up
		s.requeue()
	}
	return len(batch)
}

// requeue ends a turn: the next one comes if more was queued meanwhile or the
// session closes.
func (s *Session) requeue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backlog > 0 {
		s.outBytes -= s.backlog
		s.backlog = 0
		signal(s.space)
	}
	if len(s.out) == 0 && s.state == open {
		s.writing = false
		return
	}
	s.queued, s.urgent = true, s.answers
	s.hub.writers.push(s, s.answers)
}

// signal tells enqueueWait, if it waits, that the queue has room.
func signal(space chan struct{}) {
	if space == nil {
		return
	}
	select {
	case space <- struct{}{}:
	default:
	}
}

// writeFailed closes a connection that could not be written: the reader
// fails too, and cleans up. writing stays true: nothing more is written.
func (s *Session) writeFailed(err error) {
	if !errors.Is(err, net.ErrClosed) {
		s.reportLater(err)
	}
	s.conn.Close()
}

// reportLater runs the error hook (and the observer, for a slow consumer)
// on a goroutine of its own: write failures are found by the hub's writers,
// slow consumers under locks, and a slow hook must hold up neither. Shutdown
// waits for it.
func (s *Session) reportLater(err error) {
	s.hub.writers.active.add(1)
	go func() {
		defer s.hub.writers.active.add(-1)
		if errors.Is(err, ErrSlowConsumer) {
			s.hub.obs.SlowConsumer()
		}
		s.hub.reportError(s, err)
	}()
}

// dropQueueLocked forgets the frames not yet taken by the writer.
func (s *Session) dropQueueLocked() {
	for _, f := range s.out {
		s.outBytes -= len(f.data)
	}
	s.outCount -= len(s.out)
	clear(s.out)
	s.out = s.out[:0]
	s.answers = false
	s.pongAt = 0
}

// maxBatch bounds how many queued events go into one array frame.
const maxBatch = 64

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeChunk is the most a write carries, unless one frame is larger: the
// pooled buffers stay small however long the queue (a burst of 10,000
// events to one session made a megabyte of garbage per turn).
const writeChunk = 64 << 10

// writeBatch writes the frames, consecutive events as JSON array frames
// (PROTOCOL.md section 2), in writes of up to writeChunk: under load one
// system call carries many events.
func (s *Session) writeBatch(batch []outFrame) error {
	bp := batchPool.Get().(*[]byte)
	b := (*bp)[:0]
	var err error
	for i := 0; i < len(batch) && err == nil; {
		n := 1
		if batch[i].mergeable() {
			for n < maxBatch && i+n < len(batch) && batch[i+n].mergeable() {
				n++
			}
		}
		b = appendFrame(b, batch[i:i+n])
		i += n
		if len(b) >= writeChunk || i == len(batch) {
			_, err = s.socket.Write(b)
			b = b[:0]
		}
	}
	if cap(b) <= 2*writeChunk {
		*bp = b
		batchPool.Put(bp)
	}
	return err
}

// mergeable reports whether the frame is an event or answer that may go
// into a JSON array frame with its neighbours.
func (f *outFrame) mergeable() bool { return !f.binary && !f.raw && f.control == 0 }

// appendFrame appends one unmasked server frame (RFC 6455 section 5.2)
// holding frames[0], or the frames as one JSON array. The hub frames data
// itself: gorilla would write through a buffer of its own and set a
// deadline per frame.
func appendFrame(b []byte, frames []outFrame) []byte {
	op := byte(websocket.TextMessage)
	switch {
	case frames[0].control != 0:
		op = frames[0].control
	case frames[0].binary:
		op = websocket.BinaryMessage
	}
	n := len(frames[0].data)
	if len(frames) > 1 {
		n = 1 // [ ... ] and the commas
		for _, f := range frames {
			n += len(f.data) + 1
		}
	}
	b = wsframe.AppendHeader(b, op, n)
	if len(frames) == 1 {
		return append(b, frames[0].data...)
	}
	for i, f := range frames {
		if i == 0 {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = append(b, f.data...)
	}
	return append(b, ']')
}

// touch extends the heartbeat deadline after a frame or a Pong, unless the
// closing handshake set a shorter one.
func (s *Session) touch() {
	if d := s.closeDeadline.Load(); d != 0 {
		_ = s.conn.SetReadDeadline(time.Unix(0, d))
		return
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(s.hub.opts.HeartbeatTimeout))
	if d := s.closeDeadline.Load(); d != 0 {
		_ = s.conn.SetReadDeadline(time.Unix(0, d))
	}
}

// ping sends a Ping control frame; WriteControl may run beside the writer.
func (s *Session) ping() {
	s.mu.Lock()
	stop := s.state >= closeSent
	s.mu.Unlock()
	if stop {
		return
	}
	_ = s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.hub.opts.WriteTimeout))
	s.pingTimer.Reset(s.hub.opts.PingInterval)
}

// onPing answers a Ping from the peer through the send queue, where it is
// charged to the session and coalesced with an unanswered one. It runs on
// the reader goroutine and counts toward the rate limit.
func (s *Session) onPing(data string) error {
	s.touch()
	if !s.isClosing() && s.hub.allow(s, "", false) {
		_ = s.enqueue(outFrame{data: []byte(data), control: websocket.PongMessage, urgent: true})
	}
	return nil
}

// dispatch queues an inbound frame for the session's handler goroutine, so a
// slow handler never stalls reading (and thus heartbeats) while the
// session's frames are still handled one at a time, in order.
func (s *Session) dispatch(f inFrame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state >= draining {
		return true
	}
	o := &s.hub.opts
	if len(s.in) > 0 && (len(s.in) >= o.MaxPending || s.inBytes+f.size > o.MaxPendingBytes) {
		return false
	}
	s.in = append(s.in, f)
	s.inBytes += f.size
	if !s.handling {
		s.handling = true
		s.hub.running.add(1)
		go s.handleLoop()
	}
	return true
}

func (s *Session) handleLoop() {
	defer s.hub.running.add(-1)
	for {
		s.mu.Lock()
		if len(s.in) == 0 || s.state == gone {
			s.in = nil
			s.handling = false
			if s.state >= draining && s.state < gone {
				// The close frame waited for these frames' answers.
				s.kickLocked(true)
			}
			s.mu.Unlock()
			return
		}
		f := s.in[0]
		s.in[0] = inFrame{}
		s.in = s.in[1:]
		s.inBytes -= f.size
		s.mu.Unlock()
		s.hub.handle(s, f)
		s.writeAnswers()
	}
}

// writeAnswers writes the session's queue at once if it holds an answer and
// no turn runs, from the goroutine that made the answer (which holds no
// lock), instead of waiting for a writer: with writers busy with a broadcast,
// a request's answer would wait for the scheduler to run one.
func (s *Session) writeAnswers() {
	s.mu.Lock()
	if !s.answers || !s.queued {
		s.mu.Unlock()
		return
	}
	// The pool's entry is skipped when its turn comes.
	s.mu.Unlock()
	s.turn()
}
