package hub

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/internal/wsframe"
	"github.com/ginws/ginws/wire"
)

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
		s.overflowLocked()
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

// overflowLocked closes a session whose queue is full with 1013 at once:
// nothing is dropped silently, the client learns of the gap and resumes.
func (s *Session) overflowLocked() {
	s.startCloseLocked(wire.CloseSlowConsumer, wire.CloseSlowConsumer.Reason(), true)
}

// queueReply queues an answer (ack, error, pong) ahead of the events, as
// enqueue does, from any goroutine.
func (s *Session) queueReply(frame []byte) {
	_ = s.enqueue(outFrame{data: frame, urgent: true})
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
			s.overflowLocked()
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
