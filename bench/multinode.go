package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ginws/ginws/internal/redistest"
)

// backend is how a multi-node run reaches Redis: not at all (one node, the
// in-memory broker), through one redis-server, or through a Redis Cluster.
type backend string

const (
	inMemory     backend = "in-memory"
	oneRedis     backend = "one Redis"
	redisCluster backend = "Redis Cluster"
	// The same with the broker's AsyncPublish: Emit does not wait for
	// Redis.
	oneRedisAsync     backend = "one Redis, AsyncPublish"
	redisClusterAsync backend = "Redis Cluster, AsyncPublish"
)

// redisBackends are the backends with Redis, compared with one node and
// with the in-memory node.
var redisBackends = []backend{oneRedis, redisCluster, oneRedisAsync, redisClusterAsync}

// nodeRun is one configuration of the multi-node scenario.
type nodeRun struct {
	backend backend
	nodes   int
	procs   int // each node's GOMAXPROCS; 0: Go's default
	// CPU per delivery (ns), summed over the nodes and Redis, by room size
	// and number of publishers.
	cpuPerDel map[load]float64
	// Redis script calls per call of 40 events, by the same.
	scriptsPerCall map[load]float64
	// Publish-to-delivery latency (µs) from node 0 to a member on the last
	// node: p50, p99, p99.9.
	latency [3]float64
}

// name is the run's broker, and its GOMAXPROCS when set.
func (n nodeRun) name() string {
	if n.procs > 0 {
		return fmt.Sprintf("%s, GOMAXPROCS=%d", n.backend, n.procs)
	}
	return string(n.backend)
}

// userRun is the user-directed scenario: node 0 sends to one of its own
// users at a rate; node 1 has none of them.
type userRun struct {
	backend      backend
	rate         float64 // messages per second achieved
	node0, node1 float64 // CPU ms per second
	redis        float64 // CPU ms per second of redis-server
}

// load is one workload of the multi-node scenario: events to a room of k
// members, published by one goroutine of node 0 after the other, or by
// several at once, as an application's handlers do.
type load struct{ k, publishers int }

// eventsPerCall is how many events node 0 publishes at each call of the
// multi-node scenario, before it waits for them all to arrive.
const eventsPerCall = 40

// multiLoads are the workloads of the multi-node scenario.
var multiLoads = []load{{10, 1}, {100, 1}, {10, 8}, {100, 8}, {10, 32}, {100, 32}}

// multiNode measures the cross-node cost of room fan-out with the same
// room layout each time: -mconns connections dialed round-robin over the
// nodes, so that a room's members are spread over them, and events
// published on node 0. CPU per delivery is summed over every node process
// and redis-server: on one machine the nodes share its cores, so that, not
// throughput, is the figure.
func (r *report) multiNode(dir string) {
	runs := []struct {
		b        backend
		n, procs int
	}{{inMemory, 1, 0}, {oneRedis, 1, 0}, {oneRedis, 2, 0}, {oneRedis, 3, 0}, {redisCluster, 1, 0}, {redisCluster, 2, 0}, {redisCluster, 3, 0},
		{oneRedisAsync, 1, 0}, {oneRedisAsync, 3, 0}, {redisClusterAsync, 1, 0}, {redisClusterAsync, 3, 0},
		// One P per node, as in containers limited to one CPU (Go
		// sets GOMAXPROCS from the limit): no other P runs a drainer
		// while a publisher still queues.
		{inMemory, 1, 1}, {oneRedisAsync, 1, 1}, {oneRedisAsync, 3, 1}}
	for _, run := range runs {
		r.nodeRuns = append(r.nodeRuns, multiNodeRun(dir, run.b, run.n, run.procs))
	}
	for _, b := range []backend{oneRedis, redisCluster} {
		r.userRuns = append(r.userRuns, userDirected(dir, b)...)
	}
}

// benchT runs redistest's servers for the suite: a failure ends it, and the
// servers are stopped by close.
type benchT struct{ cleanups []func() }

func (*benchT) Helper()                           {}
func (*benchT) Fatal(args ...any)                 { log.Fatal(args...) }
func (*benchT) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
func (*benchT) Error(args ...any)                 { log.Print(args...) }
func (t *benchT) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (t *benchT) TempDir() string {
	d, err := os.MkdirTemp("", "ginws-bench-redis-")
	must(err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
func (t *benchT) close() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// startBackend starts Redis for b and returns the servers' flags and the
// redis-server processes, whose CPU counts.
func startBackend(t *benchT, b backend) (flags []string, servers []*redistest.Server) {
	if b == oneRedisAsync || b == redisClusterAsync {
		flags = []string{"-redis-async"}
	}
	switch b {
	case oneRedis, oneRedisAsync:
		s := redistest.Start(t)
		return append(flags, "-redis", s.URL()), []*redistest.Server{s}
	case redisCluster, redisClusterAsync:
		c := redistest.StartCluster(t)
		return append(flags, "-redis-cluster", strings.Join(c.Addrs(), ",")), c.Nodes
	}
	return nil, nil
}

// redisCPU sums the CPU time of the servers.
func redisCPU(servers []*redistest.Server) int64 {
	var total int64
	for _, s := range servers {
		total += procCPU(s.PID())
	}
	return total
}

// scriptCalls is how many scripts the servers have run. Each call of the
// publishing script is a round trip from node 0, and a message that wakes
// every node; replicas get the script's effects, not the call.
func scriptCalls(servers []*redistest.Server) int64 {
	var n int64
	for _, s := range servers {
		info, _ := s.Do("INFO", "commandstats").(string)
		for _, line := range strings.Split(info, "\r\n") {
			for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
				if rest, ok := strings.CutPrefix(line, cmd); ok {
					calls, _, _ := strings.Cut(rest, ",")
					c, _ := strconv.ParseInt(calls, 10, 64)
					n += c
				}
			}
		}
	}
	return n
}

func multiNodeRun(dir string, b backend, n, procs int) nodeRun {
	res := nodeRun{backend: b, nodes: n, procs: procs, cpuPerDel: make(map[load]float64), scriptsPerCall: make(map[load]float64)}
	log.Printf("multi-node: %d node(s), %s", n, res.name())
	t := &benchT{}
	defer t.close()
	flags, rs := startBackend(t, b)
	flags = append(flags, "-gomaxprocs", strconv.Itoa(procs))
	var servers []*server
	var urls []string
	for range n {
		s := startServer(dir, "ginws", append([]string{"-queue", "16384", "-history", strconv.Itoa(*mhistory)}, flags...)...)
		defer s.kill()
		servers = append(servers, s)
		urls = append(urls, "ws://"+s.ws+"/ws")
	}
	lg := loadgen(dir, "-url", strings.Join(urls, ","), "-conns", fmt.Sprint(*mconns), "-rooms", "10,100")
	defer lg.stop()
	for _, s := range servers {
		for s.get("/stats").Conns < *mconns/n {
			time.Sleep(50 * time.Millisecond)
		}
	}
	cpu := func() int64 {
		var total int64
		for _, s := range servers {
			total += s.get("/stats").CPUNanos
		}
		return total + redisCPU(rs)
	}
	for _, l := range multiLoads {
		// 200,000 deliveries.
		per := eventsPerCall
		calls := max(1, 200000/(per*l.k))
		var have int64
		_, _ = fmt.Sscan(lg.ask("count", 10*time.Second), &have)
		before, scripts := cpu(), scriptCalls(rs)
		for c := 1; c <= calls; c++ {
			servers[0].broadcast(fmt.Sprintf("count=%d&size=%d&room=k%d&publishers=%d", per, *size, l.k, l.publishers))
			waitCount(lg, have+int64(c*per*l.k), 2*time.Minute)
		}
		res.cpuPerDel[l] = float64(cpu()-before) / float64(calls*per*l.k)
		res.scriptsPerCall[l] = float64(scriptCalls(rs)-scripts) / float64(calls)
	}

	// The probe's 16 connections join room k16 on the last node; node 0
	// publishes 500 stamped events a second to it for 3 s.
	probe := loadgen(dir, "-probe", "-url", urls[n-1], "-conns", "16", "-rooms", "16", "-first", "60", "-sources", "1")
	defer probe.stop()
	done := make(chan struct{})
	go func() {
		servers[0].broadcast(fmt.Sprintf("count=1500&size=%d&room=k16&interval=2ms&stamp=1", *size))
		close(done)
	}()
	_, res.latency = rtt(probe, "rtt 50 3")
	<-done
	return res
}

// userDirected sends to a user of node 0 at growing rates: with per-user
// channels node 1, which has none of that user's sessions, hears nothing.
func userDirected(dir string, b backend) []userRun {
	log.Printf("user-directed messages: 2 nodes, %s", b)
	t := &benchT{}
	defer t.close()
	flags, rs := startBackend(t, b)
	// No heartbeats within the run: 500 sessions that connected together
	// would ping together, a burst as large as what is measured.
	flags = append(flags, "-ping", "10m")
	s0 := startServer(dir, "ginws", flags...)
	defer s0.kill()
	s1 := startServer(dir, "ginws", flags...)
	defer s1.kill()
	lg := loadgen(dir, "-url", "ws://"+s0.ws+"/ws,ws://"+s1.ws+"/ws", "-conns", "1000")
	defer lg.stop()
	for _, s := range []*server{s0, s1} {
		for s.get("/stats").Conns < 500 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	var out []userRun
	// No messages first: the sessions' own cost. Then about 250, 1,000 and
	// as many as the server's sleeps allow per second (the achieved rate
	// is reported).
	for _, interval := range []time.Duration{0, 4 * time.Millisecond, time.Millisecond, 250 * time.Microsecond} {
		a0, a1, r0, start := s0.get("/stats").CPUNanos, s1.get("/stats").CPUNanos, redisCPU(rs), time.Now()
		rate := 0.0
		if interval > 0 {
			// u0 is connection 0's user, on node 0.
			count := int(3 * time.Second / interval)
			rate = float64(count) / s0.broadcastSeconds(fmt.Sprintf("count=%d&size=%d&user=u0&interval=%s", count, *size, interval))
		} else {
			time.Sleep(3 * time.Second)
		}
		secs := time.Since(start).Seconds()
		out = append(out, userRun{backend: b, rate: rate,
			node0: float64(s0.get("/stats").CPUNanos-a0) / secs / 1e6, node1: float64(s1.get("/stats").CPUNanos-a1) / secs / 1e6,
			redis: float64(redisCPU(rs)-r0) / secs / 1e6})
	}
	return out
}

// broadcastSeconds runs a broadcast and returns how long the server took.
func (s *server) broadcastSeconds(q string) float64 {
	resp, err := http.Post("http://"+s.control+"/broadcast?"+q, "text/plain", nil)
	must(err)
	defer resp.Body.Close()
	var res struct{ Seconds float64 }
	must(json.NewDecoder(resp.Body).Decode(&res))
	return res.Seconds
}

// procCPU is a process's user+system CPU time from /proc (10 ms ticks).
func procCPU(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return (utime + stime) * int64(10*time.Millisecond)
}

func (r *report) multiNodeMarkdown() string {
	if len(r.nodeRuns) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Several nodes: room fan-out across nodes\n\n%d connections dialed round-robin over the nodes, so that each room's members are spread over them; events of %d bytes published on node 0 in calls of %d, by one goroutine after the other or by 8 or 32 at once, into rooms that keep their last %d events (0: no history); each call waits until every member has its events. CPU per delivery is summed over every node process and redis-server (on one machine the nodes share the cores, so CPU per delivery is the figure, not throughput). Latency is from node 0's clock to a member on the last node, 500 events a second. Rows marked GOMAXPROCS=1 run each server process on one P, as in a container limited to one CPU.\n\n", *mconns, *size, eventsPerCall, *mhistory)
	loadHeader(&b, "CPU per delivery, ", "latency p50", "p99", "p99.9")
	for _, n := range r.nodeRuns {
		fmt.Fprintf(&b, "| %s | %d |", n.name(), n.nodes)
		for _, l := range multiLoads {
			fmt.Fprintf(&b, " %.1f µs |", n.cpuPerDel[l]/1000)
		}
		fmt.Fprintf(&b, " %.0f µs | %.0f µs | %.0f µs |\n", n.latency[0], n.latency[1], n.latency[2])
	}
	fmt.Fprintf(&b, "\nRedis script calls per call of %d events: each is a round trip from node 0 and one message to every node (1 at best; the events that arrive while a round trip is in flight go together in the next).\n\n", eventsPerCall)
	loadHeader(&b, "")
	for _, n := range r.nodeRuns {
		if n.backend == inMemory {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d |", n.name(), n.nodes)
		for _, l := range multiLoads {
			fmt.Fprintf(&b, " %.2f |", n.scriptsPerCall[l])
		}
		b.WriteString("\n")
	}
	b.WriteString(r.wakeupMarkdown())
	if len(r.userRuns) > 0 {
		b.WriteString("\n## Several nodes: messages to one user\n\nTwo nodes; node 0 sends to a user whose sessions are all on node 0. With a channel per user, node 1 hears none of it, whatever the rate.\n\n| broker | messages/s | node 0 CPU | node 1 CPU | redis-server CPU |\n|---|---|---|---|---|\n")
		for _, u := range r.userRuns {
			fmt.Fprintf(&b, "| %s | %.0f | %.1f ms/s | %.1f ms/s | %.1f ms/s |\n", u.backend, u.rate, u.node0, u.node1, u.redis)
		}
	}
	return b.String()
}

// loadHeader writes the header of a table with a row per node run: a
// column for each load, its name after prefix, then the columns of more.
func loadHeader(b *strings.Builder, prefix string, more ...string) {
	b.WriteString("| broker | nodes |")
	for _, l := range multiLoads {
		fmt.Fprintf(b, " %sK = %d, %d publisher(s) |", prefix, l.k, l.publishers)
	}
	for _, m := range more {
		fmt.Fprintf(b, " %s |", m)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(multiLoads)+len(more)) + "\n")
}

// multiNodeTargets are the targets of issues 17 and 21 that this run measured.
func (r *report) multiNodeTargets(row func(target, got string, met bool)) {
	find := func(b backend, n, procs int) *nodeRun {
		for i := range r.nodeRuns {
			if run := &r.nodeRuns[i]; run.backend == b && run.nodes == n && run.procs == procs {
				return run
			}
		}
		return nil
	}
	for _, procs := range []int{0, 1} {
		for _, b := range redisBackends {
			one, three := find(b, 1, procs), find(b, 3, procs)
			if one == nil || three == nil {
				continue
			}
			var got []string
			worst := 0.0
			for _, l := range multiLoads {
				r := three.cpuPerDel[l] / one.cpuPerDel[l]
				worst = max(worst, r)
				got = append(got, fmt.Sprintf("K = %d, %d publisher(s): %.2f×", l.k, l.publishers, r))
			}
			row(fmt.Sprintf("%s: CPU per delivery with 3 nodes within 1.3× of 1 node", three.name()), strings.Join(got, "; "), worst <= 1.3)
		}
	}
	// Issue 21: three nodes against one in-memory node, and latency.
	for _, procs := range []int{0, 1} {
		mem := find(inMemory, 1, procs)
		for _, b := range redisBackends {
			three := find(b, 3, procs)
			if mem == nil || three == nil {
				continue
			}
			var got []string
			met := true
			for _, l := range multiLoads {
				r, limit := three.cpuPerDel[l]/mem.cpuPerDel[l], 1.5
				if l.k == 10 {
					limit = 2
				}
				met = met && r <= limit
				got = append(got, fmt.Sprintf("K = %d, %d publisher(s): %.1f×", l.k, l.publishers, r))
			}
			row(fmt.Sprintf("%s: CPU per delivery with 3 nodes within 2× (K = 10) and 1.5× (K = 100) of 1 in-memory node", three.name()), strings.Join(got, "; "), met)
			row(fmt.Sprintf("%s: latency p99 across 3 nodes under 5 ms", three.name()), fmt.Sprintf("%.1f ms", three.latency[1]/1000), three.latency[1] < 5000)
		}
	}
	var flat []string
	met := len(r.userRuns) > 0
	for _, u := range r.userRuns {
		if u.rate > 0 {
			idle := 0.0
			for _, v := range r.userRuns {
				if v.backend == u.backend && v.rate == 0 {
					idle = v.node1
				}
			}
			flat = append(flat, fmt.Sprintf("%s %.0f/s: %+.1f ms/s", u.backend, u.rate, u.node1-idle))
			// Within a millisecond a second of idle: the noise of the
			// sessions' own timers.
			met = met && u.node1-idle < 1
		}
	}
	if len(flat) > 0 {
		row("messages to a user cost nothing on a node without that user", "node 1 CPU over idle: "+strings.Join(flat, "; "), met)
	}
}
