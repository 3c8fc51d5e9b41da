// Command server is the server under test of the benchmark suite (see
// bench/README.md). It serves WebSockets on -addr in one of three modes and
// a control API on -control:
//
//	ginws   the hub behind the middleware and Gin, as an application mounts it
//	melody  raw melody with its defaults and Gin: what a user writes by hand
//	tcp     a raw TCP server writing pre-encoded WebSocket frames, one write
//	        system call per message: the physical floor of a delivery
//	echo    a raw TCP server echoing what it reads: what it costs this
//	        machine to wake a process for one message
//
// Control API: GET /stats (memory, CPU, connections), POST /gc, GET /healthz
// (503 once the hub shuts down), POST /shutdown (the hub's, with -drain),
// POST /broadcast?count=N&size=B&room=R&user=U&interval=D&stamp=1&publishers=P
// (room and user: ginws only). With -redis or -redis-cluster the ginws server is one
// node of many.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // profiles on the control address
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/olahol/melody"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/internal/wsframe"
	"github.com/ginws/ginws/middleware"
)

type server interface {
	// broadcast sends frame to a room's members, a user's sessions, or
	// everyone when both are empty.
	broadcast(room, user string, frame []byte) error
	conns() int
}

func main() {
	mode := flag.String("mode", "ginws", "ginws, melody, tcp or echo")
	addr := flag.String("addr", "127.0.0.1:0", "WebSocket address")
	control := flag.String("control", "127.0.0.1:0", "control API address")
	writers := flag.Int("writers", 0, "ginws: hub.Options.Writers")
	queue := flag.Int("queue", 0, "ginws: hub.Options.SendQueueFrames (and 1 KiB per frame of SendQueueBytes)")
	heartbeat := flag.Duration("ping", 0, "ginws: hub.Options.PingInterval, and twice it HeartbeatTimeout (0: the defaults)")
	redisURL := flag.String("redis", "", "ginws: the Redis broker on this Redis URL (one of many nodes)")
	redisCluster := flag.String("redis-cluster", "", "ginws: the Redis broker on this Redis Cluster (addresses, comma-separated)")
	redisAsync := flag.Bool("redis-async", false, "ginws: the Redis broker's AsyncPublish (Emit does not wait for Redis)")
	history := flag.Int("history", 0, "ginws: every room keeps its last N events (hub.RoomOptions.History)")
	drain := flag.Duration("drain", 0, "ginws: hub.Options.DrainWindow, for POST /shutdown")
	logs := flag.Bool("log", false, "ginws: the hub's warnings and errors to standard error")
	procs := flag.Int("gomaxprocs", 0, "runtime.GOMAXPROCS (0: Go's default)")
	admit := flag.Float64("admit", 0, "ginws: upgrades admitted per second, and at once (middleware.Options.AdmitRate and AdmitBurst); 0: all")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	gin.SetMode(gin.ReleaseMode)
	for _, a := range []string{*addr, *control} {
		if host, _, _ := net.SplitHostPort(a); !net.ParseIP(host).IsLoopback() {
			log.Fatal("bench server: loopback addresses only")
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	var srv server
	switch *mode {
	case "ginws":
		opts := hub.Options{Writers: *writers, SendQueueFrames: *queue, SendQueueBytes: *queue << 10,
			PingInterval: *heartbeat, HeartbeatTimeout: 2 * *heartbeat}
		opts.DrainWindow = *drain
		if *logs {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", ln.Addr().String())
		}
		if *history > 0 {
			opts.Rooms = hub.MatchRooms([]string{"*"}, map[string]hub.RoomOptions{"*": {History: hub.HistoryOptions{Size: *history}}})
		}
		if *redisURL != "" || *redisCluster != "" {
			ro := redis.Options{URL: *redisURL, AsyncPublish: *redisAsync, Logger: slog.New(slog.DiscardHandler)}
			if *redisCluster != "" {
				ro.Addrs = strings.Split(*redisCluster, ",")
			}
			b, err := redis.New(ro)
			if err != nil {
				log.Fatal(err)
			}
			opts.Broker = b
		}
		srv = serveGinws(ln, opts, *admit)
	case "melody":
		srv = serveMelody(ln)
	case "tcp":
		srv = serveTCP(ln)
	case "echo":
		srv = serveEcho(ln)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	cl, err := net.Listen("tcp", *control)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(stats(srv))
	})
	// A load balancer's health check, and a deploy's SIGTERM (ginws).
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if g, ok := srv.(*ginwsServer); ok && !g.h.Accepting() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	http.HandleFunc("/shutdown", func(w http.ResponseWriter, _ *http.Request) {
		if g, ok := srv.(*ginwsServer); ok {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_ = g.h.Shutdown(ctx)
			}()
		}
	})
	http.HandleFunc("/gc", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		_ = json.NewEncoder(w).Encode(stats(srv))
	})
	http.HandleFunc("/broadcast", func(w http.ResponseWriter, r *http.Request) {
		count, _ := strconv.Atoi(r.URL.Query().Get("count"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		interval, _ := time.ParseDuration(r.URL.Query().Get("interval"))
		room, user := r.URL.Query().Get("room"), r.URL.Query().Get("user")
		// With stamp=1 each event carries the time it was made, for the
		// probe; else one frame serves the whole call, so that the bench
		// allocates nothing per event beside the server under test.
		stamp := r.URL.Query().Get("stamp") == "1"
		// publishers=N emits from N goroutines at once, as N handlers of
		// an application would; each sends its share in order (ginws and
		// melody: the tcp floor writes a connection from one goroutine).
		publishers, _ := strconv.Atoi(r.URL.Query().Get("publishers"))
		publishers = max(1, publishers)
		start := time.Now()
		cpu0 := cpuNanos()
		errs := make(chan error, publishers)
		for p := range publishers {
			go func() {
				frame := encodeEvent(size, time.Time{})
				for i := p; i < count; i += publishers {
					if stamp {
						frame = encodeEvent(size, time.Now())
					}
					if err := srv.broadcast(room, user, frame); err != nil {
						errs <- err
						return
					}
					if interval > 0 {
						time.Sleep(interval)
					}
				}
				errs <- nil
			}()
		}
		var failed error
		for range publishers {
			if err := <-errs; err != nil && failed == nil {
				failed = err
			}
		}
		if failed != nil {
			http.Error(w, failed.Error(), 500)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"seconds": time.Since(start).Seconds(), "cpu_nanos": cpuNanos() - cpu0})
	})
	fmt.Printf("ws %s control %s\n", ln.Addr(), cl.Addr())
	log.Fatal(http.Serve(cl, nil))
}

// encodeEvent is the JSON event every mode sends, padded to size bytes. Its
// data begins with the time it was made (Unix nanoseconds): the probe times
// how long events take to arrive.
func encodeEvent(size int, made time.Time) []byte {
	b := make([]byte, 0, size)
	b = append(b, `{"type":"tick","data":"`...)
	b = strconv.AppendInt(b, made.UnixNano(), 10)
	b = append(b, ' ')
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

type ginwsServer struct{ h *hub.Hub }

func serveGinws(ln net.Listener, opts hub.Options, admit float64) server {
	opts.MaxSessionsPerUser, opts.RateLimit = -1, -1
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := hub.New(opts)
	hub.Handle(h, "echo", func(_ *hub.Context, in json.RawMessage) (any, error) { return in, nil })
	r := gin.New()
	mo := middleware.Options{
		Auth:   middleware.AuthFunc(func(_ *gin.Context, token string) (hub.Principal, error) { return hub.Principal{UserID: token}, nil }),
		Logger: slog.New(slog.DiscardHandler),
		// Most scenarios measure connecting as fast as the server can.
		AdmitRate: -1,
	}
	if admit > 0 {
		mo.AdmitRate, mo.AdmitBurst = admit, int(admit)
	}
	r.GET("/ws", middleware.New(h, mo))
	go func() { log.Fatal(http.Serve(ln, r)) }()
	return &ginwsServer{h: h}
}

func (s *ginwsServer) broadcast(room, user string, frame []byte) error {
	var data json.RawMessage = frame[len(`{"type":"tick","data":`) : len(frame)-1]
	switch {
	case room != "":
		return s.h.To(room).Emit("tick", data)
	case user != "":
		return s.h.ToUser(user).Emit("tick", data)
	}
	return s.h.All().Emit("tick", data)
}

func (s *ginwsServer) conns() int { return s.h.Len() }

type melodyServer struct{ m *melody.Melody }

func serveMelody(ln net.Listener) server {
	m := melody.New()
	m.HandleMessage(func(s *melody.Session, msg []byte) {
		// Echo as an ack, the way a hand-written hub answers a request.
		_ = s.Write(msg)
	})
	r := gin.New()
	r.GET("/ws", func(c *gin.Context) { _ = m.HandleRequest(c.Writer, c.Request) })
	go func() { log.Fatal(http.Serve(ln, r)) }()
	return &melodyServer{m: m}
}

func (s *melodyServer) broadcast(_, _ string, frame []byte) error { return s.m.Broadcast(frame) }
func (s *melodyServer) conns() int                                { return s.m.Len() }

// tcpServer accepts plain TCP connections (the load tool speaks no HTTP to
// it) and writes each message as a pre-encoded WebSocket text frame.
type tcpServer struct {
	mu   sync.Mutex
	list []net.Conn
	n    atomic.Int64
}

func serveTCP(ln net.Listener) server {
	s := &tcpServer{}
	go accept(ln, func(c net.Conn) {
		s.mu.Lock()
		s.list = append(s.list, c)
		s.mu.Unlock()
		s.n.Add(1)
	})
	return s
}

// accept hands each connection of ln to f until ln closes.
func accept(ln net.Listener, f func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f(c)
	}
}

func (s *tcpServer) broadcast(_, _ string, frame []byte) error {
	wire := append(wsframe.AppendHeader(nil, 1, len(frame)), frame...)
	s.mu.Lock()
	conns := s.list
	s.mu.Unlock()
	for _, c := range conns {
		if _, err := c.Write(wire); err != nil {
			return err
		}
	}
	return nil
}

func (s *tcpServer) conns() int { return int(s.n.Load()) }

// echoServer writes back what each connection sends it.
type echoServer struct{ n atomic.Int64 }

func serveEcho(ln net.Listener) server {
	s := &echoServer{}
	go accept(ln, func(c net.Conn) {
		s.n.Add(1)
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	})
	return s
}

func (*echoServer) broadcast(_, _ string, _ []byte) error {
	return errors.New("the echo server broadcasts nothing")
}

func (s *echoServer) conns() int { return int(s.n.Load()) }

type statsReply struct {
	Conns      int    `json:"conns"`
	RSS        int64  `json:"rss"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
	CPUNanos   int64  `json:"cpu_nanos"`
	GCNanos    int64  `json:"gc_nanos"`
}

func stats(s server) statsReply {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return statsReply{Conns: s.conns(), RSS: rss(), HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, Sys: m.Sys,
		Goroutines: runtime.NumGoroutine(), CPUNanos: cpuNanos(), GCNanos: gcNanos()}
}

// rss reads VmRSS from /proc/self/status, in bytes.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// gcNanos is the CPU time the Go runtime estimates it spent collecting
// garbage.
func gcNanos() int64 {
	sm := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(sm)
	return int64(sm[0].Value.Float64() * 1e9)
}

// cpuNanos is the process's user+system CPU time, to the microsecond.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
