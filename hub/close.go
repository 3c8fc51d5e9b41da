package hub

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/wire"
)

// closeState is where a session is in its closing handshake. It only moves
// forward, so each question the hub asks of it is one comparison: whether
// inbound frames are still taken (< draining), whether outbound ones are
// (< discarding), whether the close frame is out (>= closeSent).
type closeState uint8

const (
	// open: frames flow both ways.
	open closeState = iota
	// draining: no more inbound frames are taken; the close frame follows
	// the answers to those already received and everything queued.
	draining
	// discarding: what is queued is dropped and the close frame goes out
	// at once (a slow consumer, say: the client learns of the gap from
	// the code and resumes).
	discarding
	// closeSent: the close frame is out, or the peer's came first;
	// nothing more is written.
	closeSent
	// gone: the connection has ended and the session left the hub.
	gone
)

// Close closes the session with code and reason after the frames already
// queued to it are written. Use 4403 to kick a user.
func (s *Session) Close(code wire.StatusCode, reason string) {
	s.mu.Lock()
	s.startCloseLocked(code, reason, false)
	s.mu.Unlock()
}

// closeWith closes the session with one of the protocol's codes and the
// reason the protocol gives it.
func (s *Session) closeWith(code wire.StatusCode) { s.Close(code, code.Reason()) }

// Err returns why the session closed (a *CloseError), or nil while open.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeErr == nil {
		return nil
	}
	return s.closeErr
}

// refuse closes a session that is not welcomed: the close frame is all it
// gets.
func (s *Session) refuse(code wire.StatusCode) {
	s.mu.Lock()
	s.startCloseLocked(code, code.Reason(), true)
	s.mu.Unlock()
	s.out.open()
}

// startCloseLocked begins the closing handshake: draining, or discarding
// when now is set; a session already draining moves on to discarding if
// now is set.
func (s *Session) startCloseLocked(code wire.StatusCode, reason string, now bool) {
	first := s.state == open
	switch {
	case first:
		s.state = draining
	case s.state != draining || !now:
		return
	}
	if now {
		s.state = discarding
	}
	if first {
		// A session already closing keeps its code: a kick (4403) stays
		// a kick when the queue then overflows.
		s.setCloseLocked(code, reason)
	} else if code == wire.CloseSlowConsumer && reason == code.Reason() {
		s.reportLater(ErrSlowConsumer)
	}
	s.releaseCloseLocked()
}

// releaseCloseLocked lets the close frame go: after what is queued once no
// frame waits for its answer, or at once when discarding.
func (s *Session) releaseCloseLocked() {
	switch {
	case s.state == discarding:
		s.out.closeNow(*s.closeErr)
	case s.state == draining && !s.handling:
		s.out.closeAfter(*s.closeErr)
	}
}

// overflowed closes a session whose queue was full with 1013 at once:
// nothing is dropped silently, the client learns of the gap and resumes.
func (s *Session) overflowed() {
	s.mu.Lock()
	s.startCloseLocked(wire.CloseSlowConsumer, wire.CloseSlowConsumer.Reason(), true)
	s.mu.Unlock()
}

// setCloseLocked records why the session closes. A slow consumer is
// reported at once, though its close frame may wait for a peer that reads
// nothing: the hooks run on a goroutine of their own (see reportLater), not
// under the session's (and maybe the hub's) lock.
func (s *Session) setCloseLocked(code wire.StatusCode, reason string) {
	s.closeErr = &CloseError{Code: code, Reason: reason}
	if code == wire.CloseSlowConsumer && reason == code.Reason() {
		s.reportLater(ErrSlowConsumer)
	}
}

// isClosing reports whether inbound frames are no longer taken.
func (s *Session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state >= draining
}

// isGone reports whether the connection has ended.
func (s *Session) isGone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == gone
}

// sendClose writes the close frame the outbox let go, unless the peer's
// came first.
func (s *Session) sendClose(ce CloseError) {
	s.mu.Lock()
	first := s.state < closeSent
	if first {
		s.state = closeSent
	}
	s.mu.Unlock()
	if first {
		s.writeClose(ce)
	}
}

// writeClose sends the close frame and gives the peer CloseTimeout to
// answer; the reader keeps reading and discarding meanwhile, so the TCP
// connection is not reset under the peer's unread close frame.
func (s *Session) writeClose(ce CloseError) {
	o := &s.hub.opts
	deadline := time.Now().Add(o.WriteTimeout + o.CloseTimeout)
	s.closeDeadline.Store(deadline.UnixNano())
	_ = s.conn.SetReadDeadline(deadline)
	msg := websocket.FormatCloseMessage(int(ce.Code), ce.Reason)
	if err := s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(o.WriteTimeout)); err != nil {
		s.conn.Close()
		return
	}
	if s.out.socket.Pending() {
		// The close frame waits behind a backlog: the peer keeps the
		// longer deadline to take it and answer.
		return
	}
	deadline = time.Now().Add(o.CloseTimeout)
	s.closeDeadline.Store(deadline.UnixNano())
	_ = s.conn.SetReadDeadline(deadline)
}

// onPeerClose answers a close frame the peer sent first with the same
// code, and never a second close frame.
func (s *Session) onPeerClose(code wire.StatusCode) {
	s.mu.Lock()
	first := s.state < closeSent
	if first {
		s.state = closeSent
	}
	if s.closeErr == nil {
		s.closeErr = &CloseError{Code: code, Reason: "peer_closed"}
	}
	s.mu.Unlock()
	s.out.discard()
	if first {
		if code == wire.CloseNoStatus {
			code = wire.CloseNormal
		}
		_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), ""), time.Now().Add(s.hub.opts.WriteTimeout))
	}
}

// writeFailed closes a connection that could not be written: the reader
// fails too, and cleans up.
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
