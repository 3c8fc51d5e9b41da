//go:build linux

package main

import (
	"bytes"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loops count the tick events arriving on many connections with a few
// epoll loops that read each socket's descriptor directly.
type loops struct {
	ls      []*loop
	next    int
	stopped atomic.Bool
	wg      sync.WaitGroup
}

type loop struct {
	epfd  int
	mu    sync.Mutex
	conns []*rconn
}

func newLoops(n int) *loops {
	l := &loops{}
	for range n {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			log.Fatalf("epoll: %v", err)
		}
		lp := &loop{epfd: epfd}
		l.ls = append(l.ls, lp)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			lp.run(&l.stopped)
		}()
	}
	return l
}

// add hands a connection to the loops; nc must stay open (and referenced)
// while they read it.
func (l *loops) add(nc net.Conn) {
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		log.Fatalf("descriptor: %v", err)
	}
	var fd int
	_ = raw.Control(func(f uintptr) { fd = int(f) })
	lp := l.ls[l.next%len(l.ls)]
	l.next++
	lp.mu.Lock()
	i := len(lp.conns)
	lp.conns = append(lp.conns, &rconn{fd: fd, nc: nc})
	lp.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(i)}
	if err := syscall.EpollCtl(lp.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		log.Fatalf("epoll add: %v", err)
	}
}

func (l *loops) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
	for _, lp := range l.ls {
		syscall.Close(lp.epfd)
	}
}

func (lp *loop) run(stopped *atomic.Bool) {
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 256<<10)
	for !stopped.Load() {
		n, err := syscall.EpollWait(lp.epfd, events, 100)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			log.Fatalf("epoll wait: %v", err)
		}
		lp.mu.Lock()
		conns := lp.conns
		lp.mu.Unlock()
		var got int64
		for _, ev := range events[:n] {
			c := conns[ev.Fd]
			// Level-triggered: what is left is reported again.
			m, err := syscall.Read(c.fd, buf)
			if m > 0 {
				got += c.feed(buf[:m])
				continue
			}
			if err != syscall.EAGAIN {
				// The connection ended: forget its descriptor.
				_ = syscall.EpollCtl(lp.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
			}
		}
		ticks.Add(got)
		if n < len(events)/2 {
			// Let the data gather: fewer, fuller reads.
			time.Sleep(time.Millisecond)
		}
	}
}

var tickMark = []byte(`"type":"tick"`)

// rconn parses the server's (unmasked) WebSocket frames as they arrive,
// counting the tick events in text frames and answering pings.
type rconn struct {
	fd        int
	nc        net.Conn
	hdr       []byte // a frame header read in part
	inPayload bool
	need      int    // payload bytes left in the current frame
	op        byte   // the current frame's opcode
	ctrl      []byte // a control frame's payload
	carry     []byte // the end of the text so far: a mark may span reads
}

func (c *rconn) feed(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		if !c.inPayload {
			b = c.header(b)
			continue
		}
		k := min(c.need, len(b))
		switch {
		case c.op <= 1: // continuation, text
			n += c.count(b[:k])
		case c.op >= 8: // control
			c.ctrl = append(c.ctrl, b[:k]...)
		}
		c.need -= k
		b = b[k:]
		if c.need == 0 {
			c.inPayload = false
			c.end()
		}
	}
	return n
}

// header reads a frame header from b, in part if b ends first, and returns
// the rest of b.
func (c *rconn) header(b []byte) []byte {
	for len(b) > 0 {
		c.hdr = append(c.hdr, b[0])
		b = b[1:]
		want := 2
		if len(c.hdr) >= 2 {
			switch c.hdr[1] & 0x7f {
			case 126:
				want = 4
			case 127:
				want = 10
			}
		}
		if len(c.hdr) < want {
			continue
		}
		size := int(c.hdr[1] & 0x7f)
		if want > 2 {
			size = 0
			for _, x := range c.hdr[2:want] {
				size = size<<8 | int(x)
			}
		}
		c.op = c.hdr[0] & 0x0f
		c.hdr = c.hdr[:0]
		c.carry = c.carry[:0]
		c.ctrl = c.ctrl[:0]
		if size == 0 {
			c.end()
		} else {
			c.need, c.inPayload = size, true
		}
		return b
	}
	return b
}

// count counts the marks in p, and those that began in the previous read.
func (c *rconn) count(p []byte) int64 {
	const keep = 12 // len(tickMark) - 1
	n := int64(bytes.Count(p, tickMark))
	if len(c.carry) > 0 {
		var w [2 * keep]byte
		s := append(append(w[:0], c.carry...), p[:min(len(p), keep)]...)
		n += int64(bytes.Count(s, tickMark)) // only marks across the seam fit
	}
	c.carry = append(c.carry, p[max(0, len(p)-keep):]...)
	if len(c.carry) > keep {
		c.carry = append(c.carry[:0], c.carry[len(c.carry)-keep:]...)
	}
	return n
}

// end finishes a frame: a ping is answered with a pong (client frames are
// masked; a zero key leaves the payload as it is).
func (c *rconn) end() {
	if c.op == 9 && len(c.ctrl) <= 125 {
		pong := append([]byte{0x8a, 0x80 | byte(len(c.ctrl)), 0, 0, 0, 0}, c.ctrl...)
		_, _ = syscall.Write(c.fd, pong)
	}
}
