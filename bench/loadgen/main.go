// Command loadgen is the client side of the benchmark suite: a separate
// process (so that clients do not share the server's memory, CPU or file
// limit) that opens many connections from several loopback source
// addresses, speaking the ginws protocol (or raw TCP for the floor), and
// answers commands on stdin, one per line:
//
//	count                 print the number of tick events received so far
//	rtt RATE SECONDS      send requests open-loop at RATE/s with jittered
//	                      start, print p50 p99 p999 of their round trips (µs)
//	storm N               open N more connections, 64 at a time, and print
//	                      the connections per second
//	quit                  close everything and exit
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
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
	url := flag.String("url", "", "ws://127.0.0.1:PORT/ws, or host:port with -tcp")
	tcp := flag.Bool("tcp", false, "raw TCP connections (the floor server)")
	frameLen := flag.Int("frame", 0, "with -tcp: bytes per frame on the wire")
	n := flag.Int("conns", 1000, "connections")
	first := flag.Int("first", 2, "first loopback source address 127.0.0.FIRST ...")
	sources := flag.Int("sources", 8, "... and how many, one after the other")
	room := flag.String("room", "", "join this room ...")
	members := flag.Int("members", 0, "... with the first M connections (0: all)")
	flag.Parse()

	dialer := func(i int) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(*first+i%*sources))}, Timeout: 10 * time.Second}
	}
	conns := make([]*websocket.Conn, 0, *n)
	var raws []net.Conn
	var wmu []sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		if *tcp {
			c, err := dialer(i).Dial("tcp", *url)
			if err != nil {
				log.Fatalf("dial %d: %v", i, err)
			}
			raws = append(raws, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				countTCP(c, *frameLen)
			}()
			continue
		}
		c, err := dialWS(*url, dialer(i), i)
		if err != nil {
			log.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if *room != "" && (*members == 0 || i < *members) {
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"`+*room+`"}`))
		}
	}
	wmu = make([]sync.Mutex, len(conns))
	rtts := newRTTs()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read(c, rtts)
		}()
	}
	fmt.Printf("connected %d in %.3f s\n", *n, time.Since(start).Seconds())

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "count":
			fmt.Println(ticks.Load())
		case len(f) == 3 && f[0] == "rtt":
			rate, _ := strconv.Atoi(f[1])
			secs, _ := strconv.ParseFloat(f[2], 64)
			p := measureRTT(conns, wmu, rtts, rate, time.Duration(secs*float64(time.Second)))
			fmt.Printf("%.0f %.0f %.0f %d\n", p[0], p[1], p[2], int(p[3]))
		case len(f) == 2 && f[0] == "storm":
			n, _ := strconv.Atoi(f[1])
			start := time.Now()
			fresh := make([]*websocket.Conn, n)
			var swg sync.WaitGroup
			sem := make(chan struct{}, 64)
			failed := atomic.Int64{}
			for i := range fresh {
				swg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; swg.Done() }()
					k := len(conns) + i
					c, err := dialWS(*url, dialer(k), k)
					if err != nil {
						failed.Add(1)
						return
					}
					fresh[i] = c
				}()
			}
			swg.Wait()
			rate := float64(n) / time.Since(start).Seconds()
			for _, c := range fresh {
				if c != nil {
					conns = append(conns, c)
					wmu = append(wmu, sync.Mutex{})
					wg.Add(1)
					go func() {
						defer wg.Done()
						read(c, rtts)
					}()
				}
			}
			fmt.Printf("%.0f %d\n", rate, failed.Load())
		case len(f) == 1 && f[0] == "quit":
			for _, c := range conns {
				c.Close()
			}
			for _, c := range raws {
				c.Close()
			}
			wg.Wait()
			return
		default:
			fmt.Println("?")
		}
	}
}

func dialWS(url string, nd *net.Dialer, i int) (*websocket.Conn, error) {
	d := websocket.Dialer{NetDial: nd.Dial, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial(url, http.Header{"Authorization": {"Bearer u" + strconv.Itoa(i)}})
	return c, err
}

func countTCP(c net.Conn, frameLen int) {
	buf := make([]byte, 64<<10)
	var rest int
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		rest += n
		ticks.Add(int64(rest / frameLen))
		rest %= frameLen
	}
}

// rtts matches acks (or melody's echoes) to their send times by id.
type rtts struct {
	mu   sync.Mutex
	sent map[string]time.Time
	got  []time.Duration
}

func newRTTs() *rtts { return &rtts{sent: make(map[string]time.Time)} }

var (
	tickMark = []byte(`"type":"tick"`)
	idMark   = []byte(`"id":"b`)
)

// read counts the events and times the answers arriving on c, reusing one
// buffer: the load tool shares the machine's CPUs with the server, so it
// must cost as little as it can.
func read(c *websocket.Conn, r *rtts) {
	buf := make([]byte, 0, 512)
	for {
		_, rd, err := c.NextReader()
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		ticks.Add(int64(bytes.Count(buf, tickMark)))
		for rest := buf; ; {
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
				r.got = append(r.got, time.Since(t))
				delete(r.sent, id)
			}
			r.mu.Unlock()
		}
	}
}

var nextID atomic.Int64

// measureRTT sends requests open-loop at rate per second for d, each on a
// random connection at a jittered time, and returns p50, p99, p99.9 in µs
// and the number of answers.
func measureRTT(conns []*websocket.Conn, wmu []sync.Mutex, r *rtts, rate int, d time.Duration) [4]float64 {
	r.mu.Lock()
	r.got = r.got[:0]
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
	got := append([]time.Duration(nil), r.got...)
	clear(r.sent)
	if len(got) == 0 {
		return [4]float64{}
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	q := func(p float64) float64 { return float64(got[min(len(got)-1, int(p*float64(len(got))))].Microseconds()) }
	return [4]float64{q(0.5), q(0.99), q(0.999), float64(len(got))}
}
