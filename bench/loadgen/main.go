//go:build linux

// Command loadgen is the client side of the benchmark suite: a separate
// process (so that clients do not share the server's memory, CPU or file
// limit) that opens many connections from several loopback source
// addresses, speaking the ginws protocol (or raw TCP for the floor), and
// answers commands on stdin, one per line:
//
//	count                 print the number of tick events received so far
//	rtt RATE SECONDS      (with -probe) send requests open-loop at RATE/s
//	                      with jittered start, print p50 p99 p999 of their
//	                      round trips (µs) and how many were answered, then
//	                      p50 p99 p999 of how long the events that arrived
//	                      meanwhile took (µs, from the time in their data)
//	                      and how many
//	storm N               open N more connections, 64 at a time, and print
//	                      the connections per second
//	herd N                N more clients connect at once, as clients do after
//	                      their node went away, retrying as they do; print
//	                      the seconds until all are in, the attempts, the
//	                      refusals (503) and the clients that gave up; then
//	                      close them
//	quit                  close everything and exit
//
// With -balance A,B it is instead a load balancer in front of two nodes
// (balance.go).
//
// The load tool shares the machine's CPUs with the server, so it counts
// events with a few epoll loops (epoll.go) rather than a goroutine per
// connection. Round trips are measured by a second instance with -probe and
// a few connections: a client reading 10,000 connections would add its own
// queueing to every answer it times.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var ticks atomic.Int64

func main() {
	url := flag.String("url", "", "ws://127.0.0.1:PORT/ws, or host:port with -tcp; several, comma-separated, are dialed in turn (connection i to the i-th modulo their number)")
	tcp := flag.Bool("tcp", false, "raw TCP connections (the floor server)")
	welcome := flag.Bool("welcome", true, "the server greets each connection with a frame (ginws does, melody does not)")
	probe := flag.Bool("probe", false, "time round trips (rtt) instead of counting events")
	n := flag.Int("conns", 1000, "connections")
	first := flag.Int("first", 2, "first loopback source address 127.0.0.FIRST ...")
	sources := flag.Int("sources", 8, "... and how many, one after the other")
	rooms := flag.String("rooms", "", "comma-separated sizes K: the first K connections join room kK")
	balanceTo := flag.String("balance", "", "A,B: be a load balancer in front of two nodes instead (see balance)")
	health := flag.String("health", "", "with -balance: node A's health check URL")
	flag.Parse()
	if a, b, ok := strings.Cut(*balanceTo, ","); ok {
		quit := make(chan struct{})
		go func() {
			in := bufio.NewScanner(os.Stdin)
			for in.Scan() && in.Text() != "quit" {
			}
			close(quit)
		}()
		balance(a, b, *health, quit)
		return
	}

	urls := strings.Split(*url, ",")
	var sizes []int
	for _, f := range strings.Split(*rooms, ",") {
		if k, err := strconv.Atoi(f); err == nil {
			sizes = append(sizes, k)
		}
	}
	dialer := func(i int) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(*first+i%*sources))}, Timeout: 10 * time.Second}
	}
	// open dials connection i: ready for the epoll loops, or with -probe a
	// websocket.Conn of its own.
	open := func(i int) (net.Conn, *websocket.Conn, error) {
		if *tcp {
			c, err := dialer(i).Dial("tcp", urls[i%len(urls)])
			return c, nil, err
		}
		d := websocket.Dialer{NetDial: dialer(i).Dial, HandshakeTimeout: 10 * time.Second}
		c, resp, err := d.Dial(urls[i%len(urls)], http.Header{"Authorization": {"Bearer u" + strconv.Itoa(i)}})
		if err != nil {
			if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
				secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				return nil, nil, refused(time.Duration(secs) * time.Second)
			}
			return nil, nil, err
		}
		// What the server sends first is read here, so that the epoll
		// loops start at a frame boundary.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if *welcome {
			if _, _, err := c.ReadMessage(); err != nil {
				return nil, nil, fmt.Errorf("welcome: %w", err)
			}
		}
		for _, k := range sizes {
			if i >= k {
				continue
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","id":"j","room":"k`+strconv.Itoa(k)+`"}`)); err != nil {
				return nil, nil, err
			}
			if _, _, err := c.ReadMessage(); err != nil {
				return nil, nil, fmt.Errorf("join: %w", err)
			}
		}
		_ = c.SetReadDeadline(time.Time{})
		return c.NetConn(), c, nil
	}

	loops := newLoops(2)
	rtts := newRTTs()
	var probes []*websocket.Conn
	var wmu []sync.Mutex
	var wg sync.WaitGroup
	add := func(nc net.Conn, c *websocket.Conn) {
		if !*probe {
			loops.add(nc)
			return
		}
		probes = append(probes, c)
		wmu = append(wmu, sync.Mutex{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			read(c, rtts)
		}()
	}
	var all []net.Conn
	start := time.Now()
	for i := range *n {
		nc, c, err := open(i)
		if err != nil {
			log.Fatalf("dial %d: %v", i, err)
		}
		all = append(all, nc)
		add(nc, c)
	}
	fmt.Printf("connected %d in %.3f s\n", *n, time.Since(start).Seconds())

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "count":
			fmt.Println(ticks.Load())
		case len(f) == 3 && f[0] == "rtt" && *probe:
			rate, _ := strconv.Atoi(f[1])
			secs, _ := strconv.ParseFloat(f[2], 64)
			p, e := measureRTT(probes, wmu, rtts, rate, time.Duration(secs*float64(time.Second)))
			fmt.Printf("%.0f %.0f %.0f %d %.0f %.0f %.0f %d\n", p[0], p[1], p[2], int(p[3]), e[0], e[1], e[2], int(e[3]))
		case len(f) == 2 && f[0] == "storm":
			n, _ := strconv.Atoi(f[1])
			start := time.Now()
			type conn struct {
				nc net.Conn
				c  *websocket.Conn
			}
			fresh := make([]conn, n)
			var swg sync.WaitGroup
			sem := make(chan struct{}, 64)
			failed := atomic.Int64{}
			for i := range fresh {
				swg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; swg.Done() }()
					nc, c, err := open(len(all) + i)
					if err != nil {
						failed.Add(1)
						return
					}
					fresh[i] = conn{nc, c}
				}()
			}
			swg.Wait()
			rate := float64(n) / time.Since(start).Seconds()
			for _, c := range fresh {
				if c.nc != nil {
					all = append(all, c.nc)
					add(c.nc, c.c)
				}
			}
			fmt.Printf("%.0f %d\n", rate, failed.Load())
		case len(f) == 2 && f[0] == "herd":
			n, _ := strconv.Atoi(f[1])
			secs, attempts, refusals, failed := herd(n, func(i int) (net.Conn, error) {
				nc, _, err := open(len(all) + i)
				return nc, err
			})
			fmt.Printf("%.3f %d %d %d\n", secs, attempts, refusals, failed)
		case len(f) == 1 && f[0] == "quit":
			loops.stop()
			for _, c := range all {
				c.Close()
			}
			wg.Wait()
			return
		default:
			fmt.Println("?")
		}
	}
}

// rtts matches acks (or melody's echoes) to their send times by id, and
// keeps how long events took while it times round trips.
type rtts struct {
	mu        sync.Mutex
	sent      map[string]time.Time
	got       []time.Duration
	recording bool
	events    []time.Duration
}

func newRTTs() *rtts { return &rtts{sent: make(map[string]time.Time)} }

var (
	idMark    = []byte(`"id":"b`)
	eventMark = []byte(`"type":"tick",`)
	dataMark  = []byte(`"data":"`) // after the room, in a room's events
)

// read times the answers arriving on a probe connection.
func read(c *websocket.Conn, r *rtts) {
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		recording := r.recording
		r.mu.Unlock()
		for rest := data; recording; {
			i := bytes.Index(rest, eventMark)
			if i < 0 {
				break
			}
			rest = rest[i+len(eventMark):]
			if i = bytes.Index(rest, dataMark); i < 0 {
				break
			}
			rest = rest[i+len(dataMark):]
			j := bytes.IndexByte(rest, ' ')
			if j < 0 {
				break
			}
			if made, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				r.mu.Lock()
				r.events = append(r.events, now.Sub(time.Unix(0, made)))
				r.mu.Unlock()
			}
		}
		for rest := data; ; {
			i := bytes.Index(rest, idMark)
			if i < 0 {
				break
			}
			rest = rest[i+6:]
			j := bytes.IndexByte(rest, '"')
			if j < 0 {
				break
			}
			id := string(rest[:j])
			r.mu.Lock()
			if t, ok := r.sent[id]; ok {
				r.got = append(r.got, now.Sub(t))
				delete(r.sent, id)
			}
			r.mu.Unlock()
		}
	}
}

var nextID atomic.Int64

// measureRTT sends requests open-loop at rate per second for d, each on a
// random connection at a jittered time, and returns p50, p99, p99.9 in µs
// and the number of answers, and the same of the events' delays meanwhile.
func measureRTT(conns []*websocket.Conn, wmu []sync.Mutex, r *rtts, rate int, d time.Duration) (rtt, events [4]float64) {
	r.mu.Lock()
	r.got, r.events, r.recording = r.got[:0], r.events[:0], true
	r.mu.Unlock()
	interval := time.Second / time.Duration(rate)
	end := time.Now().Add(d)
	for next := time.Now(); next.Before(end); next = next.Add(interval) {
		time.Sleep(time.Until(next.Add(time.Duration(rand.Int64N(int64(interval))))))
		i := rand.IntN(len(conns))
		id := "b" + strconv.FormatInt(nextID.Add(1), 10)
		r.mu.Lock()
		r.sent[id] = time.Now()
		r.mu.Unlock()
		wmu[i].Lock()
		_ = conns[i].WriteMessage(websocket.TextMessage, []byte(`{"type":"echo","id":"`+id+`","data":1}`))
		wmu[i].Unlock()
	}
	time.Sleep(500 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recording = false
	clear(r.sent)
	return percentiles(r.got), percentiles(r.events)
}

// percentiles returns p50, p99 and p99.9 in µs, and the count.
func percentiles(d []time.Duration) [4]float64 {
	if len(d) == 0 {
		return [4]float64{}
	}
	d = append([]time.Duration(nil), d...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) float64 { return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) }
	return [4]float64{q(0.5), q(0.99), q(0.999), float64(len(d))}
}

// refused is an upgrade the server refused with 503 and Retry-After.
type refused time.Duration

func (r refused) Error() string { return fmt.Sprintf("503, retry after %v", time.Duration(r)) }

// herd has n clients connect at once (up to 1,000 dials in flight, within
// the file descriptors of a test machine). A refused client waits the
// server's Retry-After and as much again in jitter, as ginws's clients do;
// after another failure 100 ms and jitter. One that is not in after a
// minute gives up.
func herd(n int, dial func(i int) (net.Conn, error)) (secs float64, attempts, refusals, failed int64) {
	var na, nr, nf atomic.Int64
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, 1000)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
				sem <- struct{}{}
				na.Add(1)
				nc, err := dial(i)
				<-sem
				if err == nil {
					conns[i] = nc
					return
				}
				wait := 100 * time.Millisecond
				if r, ok := err.(refused); ok {
					nr.Add(1)
					wait = max(time.Duration(r), wait)
				}
				time.Sleep(wait + rand.N(wait))
			}
			nf.Add(1)
		})
	}
	wg.Wait()
	secs = time.Since(start).Seconds()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	return secs, na.Load(), nr.Load(), nf.Load()
}
