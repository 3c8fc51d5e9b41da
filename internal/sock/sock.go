// Package sock is the connection under a hub session's websocket.Conn: its
// writes never block the caller. It writes what the socket takes at once and
// keeps the rest in a backlog, which a goroutine of its own then writes,
// waiting for the peer; later writes queue behind it so frames stay in
// order. Reads go to the connection, or through a reader put over it (see
// ReadThrough); Close and addresses go straight to the connection.
//
// The hub's writer goroutines write every session's queue through it, so a
// peer that reads slowly holds up nobody but itself. gorilla/websocket
// writes control frames (Ping, Close) through the same Conn from other
// goroutines: each Write is whole frames, and a Write is never split
// between the socket and the backlog out of order, so a control frame never
// lands inside a data frame. gorilla's write deadlines do not apply (see
// SetWriteDeadline): the backlog has a time-out of its own.
package sock

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Conn is a connection whose writes never wait for the peer.
type Conn struct {
	net.Conn
	raw     syscall.RawConn // nil when the connection has no descriptor (TLS): every write then waits in the backlog
	timeout time.Duration   // the peer must take some of the backlog within this
	track   func(delta int) // counts the flusher goroutine, for the owner's shutdown
	in      io.Reader       // what Read reads: the connection unless ReadThrough set another

	mu       sync.Mutex
	drained  func()      // set by Own: a parked writer may go on
	failed   func(error) // set by Own: the connection could not be written
	backlog  []byte
	spare    []byte
	flushing bool  // a flusher goroutine runs: writes queue behind it
	parked   bool  // a writer waits for the backlog to drain
	err      error // the first write error: every later write fails with it
}

// New wraps c. A peer that takes none of the backlog for timeout fails the
// connection. track is called with +1 when a flusher goroutine starts and
// -1 when it ends, so that its owner can wait for it.
func New(c net.Conn, timeout time.Duration, track func(delta int)) *Conn {
	k := &Conn{Conn: c, timeout: timeout, track: track}
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
func (k *Conn) Write(p []byte) (int, error) {
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
			k.track(1)
			go k.flush()
		}
	}
	return len(p), nil
}

// Read reads the connection, or what ReadThrough put over it.
func (k *Conn) Read(p []byte) (int, error) {
	if k.in != nil {
		return k.in.Read(p)
	}
	return k.Conn.Read(p)
}

// ReadThrough puts a reader made by wrap over the connection's reads (the
// inflater of permessage-deflate). Call it before the first Read.
func (k *Conn) ReadThrough(wrap func(io.Reader) io.Reader) {
	k.in = wrap(k.Conn)
}

// SetWriteDeadline does nothing: no write waits but the flusher's, which
// applies its own time-out (see flush). gorilla sets one before each frame,
// and a runtime timer per frame cost a fifth of a broadcast's CPU.
func (k *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only; see SetWriteDeadline.
func (k *Conn) SetDeadline(t time.Time) error { return k.Conn.SetReadDeadline(t) }

// Own names what to call, from the flusher's goroutine, when a backlog a
// writer waits for has drained (see Park) and when a write failed. Until
// then (during the handshake) a failed write closes the connection.
func (k *Conn) Own(drained func(), failed func(error)) {
	k.mu.Lock()
	k.drained, k.failed = drained, failed
	k.mu.Unlock()
}

// Park reports whether a backlog is being written; if so the caller's next
// write should wait for it: the flusher calls drained when it is done.
func (k *Conn) Park() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.flushing {
		k.parked = true
	}
	return k.flushing
}

// Pending reports whether written frames still wait in the backlog.
func (k *Conn) Pending() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.flushing
}

// flush writes the backlog, waiting for the peer. A peer that takes nothing
// for the time-out fails the connection; one that reads slowly but steadily
// does not.
func (k *Conn) flush() {
	defer k.track(-1)
	for {
		k.mu.Lock()
		if len(k.backlog) == 0 || k.err != nil {
			// A backlog can be as large as a send queue: an idle
			// connection keeps none.
			k.backlog, k.spare = nil, nil
			k.flushing = false
			parked, drained := k.parked, k.drained
			k.parked = false
			k.mu.Unlock()
			_ = k.Conn.SetWriteDeadline(time.Time{})
			if parked {
				drained()
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
		failed := k.failed
		k.mu.Unlock()
		if err != nil {
			if failed != nil {
				failed(err)
			} else {
				_ = k.Conn.Close()
			}
		}
	}
}

func (k *Conn) writeAll(buf []byte) error {
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
