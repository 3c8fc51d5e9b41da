package hub

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// sock is the connection under a session's websocket.Conn. Its writes never
// block the hub's writer goroutines (writers.go): it writes what the socket
// takes at once and keeps the rest, which a goroutine of its own then
// writes, waiting for the peer; later writes queue behind it so frames stay
// in order. Reads, Close and addresses go straight to the connection.
type sock struct {
	net.Conn
	raw     syscall.RawConn // nil when the connection has no descriptor (TLS): every write then waits in the backlog
	timeout time.Duration   // the peer must take some of the backlog within this
	active  *counter        // counts the flusher, for Hub.Shutdown

	mu       sync.Mutex
	owner    *Session // set once the session exists; nil during the handshake
	backlog  []byte
	spare    []byte
	flushing bool  // a flusher goroutine runs: writes queue behind it
	parked   bool  // the owner waits for the backlog to drain
	err      error // the first write error: every later write fails with it
}

func newSock(c net.Conn, timeout time.Duration, active *counter) *sock {
	k := &sock{Conn: c, timeout: timeout, active: active}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			k.raw = raw
		}
	}
	return k
}

// Write writes p at once when the socket has room and never waits: what
// does not fit is kept in order and written by the flusher. Every write is
// one whole frame, or several, so a control frame written by gorilla from
// another goroutine never lands inside a data frame.
func (k *sock) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		// The first error was reported, and closed the connection.
		return 0, net.ErrClosed
	}
	rest := p
	if !k.flushing && k.raw != nil {
		n, err := tryWrite(k.raw, p)
		if err != nil {
			k.err = err
			return n, err
		}
		rest = p[n:]
	}
	if len(rest) > 0 {
		k.backlog = append(k.backlog, rest...)
		if !k.flushing {
			k.flushing = true
			k.active.add(1)
			go k.flush()
		}
	}
	return len(p), nil
}

// SetWriteDeadline does nothing: no write waits but the flusher's, which
// applies its own time-out (see flush). gorilla sets one before each frame,
// and a runtime timer per frame cost a fifth of a broadcast's CPU.
func (k *sock) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only; see SetWriteDeadline.
func (k *sock) SetDeadline(t time.Time) error { return k.Conn.SetReadDeadline(t) }

// own names the session the socket belongs to, once it exists.
func (k *sock) own(s *Session) {
	k.mu.Lock()
	k.owner = s
	k.mu.Unlock()
}

// park reports whether a backlog is being written; if so the owner's next
// turn waits for it: the flusher requeues the owner when it is done.
func (k *sock) park() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.flushing {
		k.parked = true
	}
	return k.flushing
}

// pending reports whether written frames still wait in the backlog.
func (k *sock) pending() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.flushing
}

// flush writes the backlog, waiting for the peer. A peer that takes nothing
// for the time-out fails the connection; one that reads slowly but steadily
// does not.
func (k *sock) flush() {
	defer k.active.add(-1)
	for {
		k.mu.Lock()
		if len(k.backlog) == 0 || k.err != nil {
			// A backlog can be as large as a send queue: an idle
			// connection keeps none.
			k.backlog, k.spare = nil, nil
			k.flushing = false
			parked, owner := k.parked, k.owner
			k.parked = false
			k.mu.Unlock()
			_ = k.Conn.SetWriteDeadline(time.Time{})
			if parked {
				owner.requeue()
			}
			return
		}
		buf := k.backlog
		k.backlog = k.spare[:0]
		k.mu.Unlock()

		err := k.writeAll(buf)

		k.mu.Lock()
		k.spare = buf[:0]
		if err != nil && k.err == nil {
			k.err = err
		}
		owner := k.owner
		k.mu.Unlock()
		if err != nil {
			if owner != nil {
				owner.writeFailed(err)
			} else {
				_ = k.Conn.Close()
			}
		}
	}
}

func (k *sock) writeAll(buf []byte) error {
	for len(buf) > 0 {
		_ = k.Conn.SetWriteDeadline(time.Now().Add(k.timeout))
		n, err := k.Conn.Write(buf)
		buf = buf[n:]
		if err != nil && !(n > 0 && errors.Is(err, os.ErrDeadlineExceeded)) {
			return err
		}
	}
	return nil
}
