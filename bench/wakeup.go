package main

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"time"

	"github.com/ginws/ginws/internal/redistest"
)

// wakeCost is what one small message costs a process on this machine, in
// nanoseconds of CPU: to wake from idle, answer and sleep again, or to
// answer while kept busy.
type wakeCost struct {
	echoIdle, echoBusy, redisIdle float64
}

// wakeGap is how long the processes idle between the messages of the
// idle measurement; the multi-node scenario's calls are about as far
// apart (waitCount polls every 5 ms).
const wakeGap = 2 * time.Millisecond

// wakeup measures the floor under the multi-node figures. Every process an
// event reaches pays for being woken, whatever it then does: one node
// pays it once for all its members, while on several nodes each node and
// redis-server pays it for every message that reaches it. A Go echo
// server (bench/server -mode echo) stands for a node, and PING for
// redis-server.
func (r *report) wakeup(dir string) {
	log.Print("wake-up cost")
	s := startServer(dir, "echo")
	defer s.kill()
	echo := dial(s.ws)
	defer echo.Close()
	msg := bytes.Repeat([]byte{'x'}, *size)
	nodeCPU := func() int64 { return s.get("/stats").CPUNanos }
	r.wake.echoIdle = perMessage(echo, msg, msg, nodeCPU, wakeGap, 1500)
	r.wake.echoBusy = perMessage(echo, msg, msg, nodeCPU, 0, 20000)

	t := &benchT{}
	defer t.close()
	rs := redistest.Start(t)
	rc := dial(rs.Addr())
	defer rc.Close()
	r.wake.redisIdle = perMessage(rc, []byte("PING\r\n"), []byte("+PONG\r\n"), func() int64 { return procCPU(rs.PID()) }, wakeGap, 1500)
}

func dial(addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	must(err)
	return c
}

// perMessage sends msg n times, gap apart, each after the reply to the one
// before, and returns the CPU the other end spent per message.
func perMessage(c net.Conn, msg, reply []byte, cpu func() int64, gap time.Duration, n int) float64 {
	buf := make([]byte, len(reply))
	before := cpu()
	for range n {
		if gap > 0 {
			time.Sleep(gap)
		}
		_, err := c.Write(msg)
		must(err)
		_, err = io.ReadFull(c, buf)
		must(err)
		if !bytes.Equal(buf, reply) {
			log.Fatalf("wake-up cost: %q in reply to %q", buf, msg)
		}
	}
	return float64(cpu()-before) / float64(n)
}

func (r *report) wakeupMarkdown() string {
	if r.wake == (wakeCost{}) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nWhat waking a process costs this machine, the floor under the figures above: one node pays it once per event (or burst) for all its members; on several nodes, each node and redis-server that the event reaches pays it. CPU per message of %d bytes, a reply each, sent %v apart (idle between) or back to back:\n\n", *size, wakeGap)
	b.WriteString("| process | idle between messages | back to back |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| Go TCP echo (bench/server -mode echo) | %.1f µs | %.1f µs |\n", r.wake.echoIdle/1000, r.wake.echoBusy/1000)
	fmt.Fprintf(&b, "| redis-server, PING | %.1f µs | |\n", r.wake.redisIdle/1000)
	return b.String()
}
