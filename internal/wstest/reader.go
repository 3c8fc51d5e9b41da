package wstest

import (
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/wire"
)

// Reader reads a client's connection on a goroutine of its own, so that
// the server's pings are answered and its frames taken while the test is
// busy elsewhere. It counts the frames by type and error code, keeps those
// of the types it was asked to (for Next), and records the close code.
type Reader struct {
	keep map[string]bool
	done chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every frame
	types   map[string]int
	errors  map[string]int
	kept    []Frame
	code    int
}

// idle bounds each read of a Reader; the end of the test closes the
// connection long before.
const idle = time.Minute

// Background hands the connection to a Reader until it ends (the test's
// end closes it); the client must not be read from again. Frames of the
// types in keep are kept, in order, for Next; all are counted.
func (c *Client) Background(keep ...string) *Reader {
	r := &Reader{
		keep:    map[string]bool{},
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		types:   map[string]int{},
		errors:  map[string]int{},
	}
	for _, typ := range keep {
		r.keep[typ] = true
	}
	r.add(c.pending)
	c.pending = nil
	go r.run(c.Conn)
	c.t.Cleanup(func() {
		c.Conn.Close()
		<-r.done
	})
	return r
}

func (r *Reader) run(conn *websocket.Conn) {
	defer close(r.done)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		_, data, err := conn.ReadMessage()
		if err != nil {
			r.mu.Lock()
			defer r.mu.Unlock()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				r.code = ce.Code
			}
			return
		}
		if fs, err := SplitFrames(data); err == nil { // not a plain-text pong
			r.add(fs)
		}
	}
}

func (r *Reader) add(fs []Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range fs {
		r.types[f.Type]++
		if f.Error != nil {
			r.errors[f.Error.Code]++
		}
		if r.keep[f.Type] {
			r.kept = append(r.kept, f)
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// Count returns how many frames of type typ have arrived.
func (r *Reader) Count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.types[typ]
}

// Errors returns how many error frames with code have arrived.
func (r *Reader) Errors(code wire.Code) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errors[string(code)]
}

// Code returns the code of the close frame that ended the connection, or
// 0 while it is open or when it ended without one.
func (r *Reader) Code() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.code
}

// Done is closed when the connection has ended.
func (r *Reader) Done() <-chan struct{} { return r.done }

// Wait waits up to d for the connection to end and returns Code; it
// returns -1 when the connection is still open.
func (r *Reader) Wait(d time.Duration) int {
	select {
	case <-r.done:
		return r.Code()
	case <-time.After(d):
		return -1
	}
}

// Until waits up to d for cond to hold, trying it again after every frame;
// it reports false when d passed or the connection ended first.
func (r *Reader) Until(d time.Duration, cond func() bool) bool {
	timeout := time.After(d)
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-changed:
		case <-r.done:
			return cond()
		case <-timeout:
			return false
		}
	}
}

// Next returns the next frame kept, waiting up to d for one; it reports
// false when d passed or the connection ended first.
func (r *Reader) Next(d time.Duration) (Frame, bool) {
	var f Frame
	ok := r.Until(d, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.kept) == 0 {
			return false
		}
		f, r.kept = r.kept[0], r.kept[1:]
		return true
	})
	return f, ok
}
