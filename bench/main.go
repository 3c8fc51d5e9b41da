// Command bench runs the benchmark suite: a server under test (bench/server)
// and a separate load process (bench/loadgen) on loopback, ginws against
// raw melody and a raw TCP floor measured in the same run, and writes the
// results as markdown. Every step is bounded in time.
//
//	go run ./bench -conns 10000 -out bench/BENCHMARKS.md
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

var (
	conns    = flag.Int("conns", 10000, "connections per scenario")
	out      = flag.String("out", "", "write the markdown report here (default: stdout)")
	messages = flag.Int("messages", 20, "events per broadcast round (within the send queue)")
	rounds   = flag.Int("rounds", 10, "broadcast rounds per throughput run")
	storm    = flag.Int("storm", 2000, "connections opened in the connect storm")
	size     = flag.Int("size", 100, "bytes per event")
	modes    = flag.String("modes", "ginws,melody", "servers to measure beside the raw floor, comma-separated (none: fan-out only)")
	fanouts  = flag.Bool("fanout", true, "measure room fan-out")
	writers  = flag.Int("writers", 0, "hub.Options.Writers of the ginws server (0: its default)")
	multi    = flag.Bool("multinode", true, "measure several nodes on Redis and on a Redis Cluster (needs redis-server and redis-cli)")
	mconns   = flag.Int("mconns", 3000, "connections of the multi-node scenario, spread over the nodes")
	deployN  = flag.Int("deploy", 5000, "clients moved from one node to another in the rolling-deploy scenario, with and without a drain window (0: skip it; needs redis-server); 10,000 exhausts the loopback ports of one machine through the balancers")
	herdN    = flag.Int("herd", 10000, "clients that connect at once in the crowd scenario, with and without admission (0: skip it)")
	mhistory = flag.Int("mhistory", 100, "events each room of the multi-node scenario keeps in its history (0: none)")
)

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "ginws-bench-")
	must(err)
	defer os.RemoveAll(dir)
	for _, name := range []string{"server", "loadgen"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./bench/"+name)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		must(cmd.Run())
	}
	r := &report{}
	r.machine()
	if *modes != "" {
		for _, mode := range strings.Split(*modes, ",") {
			r.scenario(dir, mode)
		}
		r.floor(dir)
	}
	if *fanouts {
		r.fanout(dir)
	}
	if *multi {
		r.wakeup(dir)
		r.multiNode(dir)
	}
	if *herdN > 0 {
		r.herd(dir)
	}
	if *deployN > 0 {
		r.deploy(dir)
	}
	r.allocs()
	text := r.markdown()
	if *out == "" {
		fmt.Print(text)
		return
	}
	pngPath := strings.TrimSuffix(*out, filepath.Ext(*out)) + ".png"
	text += fmt.Sprintf("\n![memory per connection and round-trip percentiles](%s)\n", filepath.Base(pngPath))
	must(os.WriteFile(*out, []byte(text), 0o644))
	must(writePlot(pngPath, r.plotGroups()))
	log.Printf("wrote %s and %s", *out, pngPath)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

type stats struct {
	Conns      int    `json:"conns"`
	RSS        int64  `json:"rss"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines int    `json:"goroutines"`
	CPUNanos   int64  `json:"cpu_nanos"`
	GCNanos    int64  `json:"gc_nanos"`
}

type proc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func start(name string, args ...string) *proc {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	// Children die with the suite, even when it exits on a fatal error.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	must(err)
	stdout, err := cmd.StdoutPipe()
	must(err)
	must(cmd.Start())
	return &proc{cmd: cmd, in: in, out: bufio.NewScanner(stdout)}
}

// line reads the next line of output, or dies after d.
func (p *proc) line(d time.Duration) string {
	ch := make(chan string, 1)
	go func() {
		if p.out.Scan() {
			ch <- p.out.Text()
		} else {
			ch <- ""
		}
	}()
	select {
	case l := <-ch:
		return l
	case <-time.After(d):
		log.Fatalf("%s: no output within %v", p.cmd.Path, d)
		return ""
	}
}

func (p *proc) ask(cmd string, d time.Duration) string {
	_, err := fmt.Fprintln(p.in, cmd)
	must(err)
	return p.line(d)
}

func (p *proc) stop() {
	_, _ = fmt.Fprintln(p.in, "quit")
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

type server struct {
	*proc
	ws, control string
}

func startServer(dir, mode string, args ...string) *server {
	p := start(filepath.Join(dir, "server"), append([]string{"-mode", mode, "-writers", fmt.Sprint(*writers)}, args...)...)
	var ws, control string
	_, err := fmt.Sscanf(p.line(20*time.Second), "ws %s control %s", &ws, &control)
	must(err)
	return &server{proc: p, ws: ws, control: control}
}

func (s *server) get(path string) stats {
	resp, err := http.Post("http://"+s.control+path, "text/plain", nil)
	must(err)
	defer resp.Body.Close()
	var st stats
	must(json.NewDecoder(resp.Body).Decode(&st))
	return st
}

func (s *server) broadcast(q string) { s.post("/broadcast?" + q) }

// post calls the control API and waits for its answer.
func (s *server) post(path string) {
	resp, err := http.Post("http://"+s.control+path, "text/plain", nil)
	must(err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func loadgen(dir string, args ...string) *proc {
	p := start(filepath.Join(dir, "loadgen"), args...)
	if l := p.line(5 * time.Minute); !strings.HasPrefix(l, "connected") {
		log.Fatalf("loadgen: %q", l)
	}
	return p
}

// waitCount polls the load tool until it counted want events.
func waitCount(lg *proc, want int64, d time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < d {
		var n int64
		_, _ = fmt.Sscan(lg.ask("count", 10*time.Second), &n)
		if n >= want {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	log.Fatalf("only part of %d events arrived within %v", want, d)
	return 0
}

type result struct {
	mode                        string
	idleBytes, idleHeap         float64 // per connection, after GC
	burstBytes, burstHeap       float64
	deliveriesPerSec, cpuPerDel float64 // ns
	rttAlone, rttLoaded         [3]float64
	eventsLoaded                [3]float64 // how long events took to arrive meanwhile
	stormPerSec                 float64
}

type fan struct {
	n, k      int
	cpuPerDel float64
	gcPerDel  float64 // of which garbage collection
}

// fanRatio is the median ratio of the cost per delivery to K members
// among -conns sessions to that among 1,000.
type fanRatio struct {
	k                int
	ratio, low, high float64
}

// idleCost is the server's CPU time per second with n idle sessions.
type idleCost struct {
	n        int
	nsPerSec float64
}

type report struct {
	machineText string
	wake        wakeCost
	results     []result
	floorCPU    float64
	fans        []fan
	idle        []idleCost
	fanRatios   []fanRatio
	nodeRuns    []nodeRun
	userRuns    []userRun
	herds       []herdRun
	deploys     []deployRun
	// allocations per event sent to 1,000 sessions, and for encoding it
	// alone (hub's BenchmarkBroadcastEncodeOnce and BenchmarkEncodeOnly)
	allocsBroadcast, allocsEncode float64
}

func (r *report) machine() {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	r.machineText = fmt.Sprintf("%s, %d cores, %s, %s/%s; server and load tool on loopback, %d connections",
		model, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, *conns)
}

func (r *report) scenario(dir, mode string) {
	log.Printf("%s: %d connections", mode, *conns)
	s := startServer(dir, mode)
	defer s.kill()
	base := s.get("/gc")
	url := "ws://" + s.ws + "/ws"
	// melody greets no one.
	welcome := fmt.Sprint("-welcome=", mode != "melody")
	lg := loadgen(dir, "-url", url, "-conns", fmt.Sprint(*conns), welcome)
	defer lg.stop()
	for s.get("/stats").Conns < *conns {
		time.Sleep(50 * time.Millisecond)
	}
	res := result{mode: mode}
	idle := s.get("/gc")
	n := float64(*conns)
	res.idleBytes = float64(idle.RSS-base.RSS) / n
	res.idleHeap = float64(idle.HeapInuse+idle.StackInuse-base.HeapInuse-base.StackInuse) / n

	// A burst touches every session's queue and buffers once.
	s.broadcast(fmt.Sprintf("count=5&size=%d", *size))
	waitCount(lg, int64(5**conns), time.Minute)
	burst := s.get("/gc")
	res.burstBytes = float64(burst.RSS-base.RSS) / n
	res.burstHeap = float64(burst.HeapInuse+burst.StackInuse-base.HeapInuse-base.StackInuse) / n

	// Throughput: deliveries per second and server CPU per delivery, over
	// rounds of -messages events (each round fits the send queues).
	before := s.get("/stats")
	var have int64
	_, _ = fmt.Sscan(lg.ask("count", 10*time.Second), &have)
	total := int64(*rounds) * int64(*messages) * int64(*conns)
	start := time.Now()
	for i := 1; i <= *rounds; i++ {
		s.broadcast(fmt.Sprintf("count=%d&size=%d", *messages, *size))
		waitCount(lg, have+int64(i)*int64(*messages)*int64(*conns), 2*time.Minute)
	}
	elapsed := time.Since(start)
	after := s.get("/stats")
	res.deliveriesPerSec = float64(total) / elapsed.Seconds()
	res.cpuPerDel = float64(after.CPUNanos-before.CPUNanos) / float64(total)

	// Round trips are timed by a client of its own with a few connections,
	// from another source address.
	probe := loadgen(dir, "-probe", "-url", url, "-conns", "16", "-first", "60", "-sources", "1", welcome)
	defer probe.stop()
	res.rttAlone, _ = rtt(probe, "rtt 200 3")
	// The same while broadcasting at about half the measured maximum.
	perSec := res.deliveriesPerSec / 2 / n
	interval := time.Duration(float64(time.Second) / perSec)
	count := int(4 * perSec)
	done := make(chan struct{})
	go func() {
		s.broadcast(fmt.Sprintf("count=%d&size=%d&interval=%s&stamp=1", count, *size, interval))
		close(done)
	}()
	res.rttLoaded, res.eventsLoaded = rtt(probe, "rtt 200 3")
	<-done

	// Connect storm: new connections per second while broadcasting.
	done = make(chan struct{})
	go func() {
		s.broadcast(fmt.Sprintf("count=%d&size=%d&interval=%s&stamp=1", count, *size, interval))
		close(done)
	}()
	var failed int
	_, _ = fmt.Sscan(lg.ask(fmt.Sprintf("storm %d", *storm), 2*time.Minute), &res.stormPerSec, &failed)
	if failed > 0 {
		log.Printf("%s: %d storm connections failed", mode, failed)
	}
	<-done
	r.results = append(r.results, res)
}

// rtt asks the probe to time round trips and returns their p50, p99 and
// p99.9, and those of the delays of the events that arrived meanwhile (µs).
func rtt(lg *proc, cmd string) (p, events [3]float64) {
	var n, en int
	_, _ = fmt.Sscan(lg.ask(cmd, time.Minute), &p[0], &p[1], &p[2], &n, &events[0], &events[1], &events[2], &en)
	return p, events
}

// floor measures a raw TCP write per delivery, the physical floor.
func (r *report) floor(dir string) {
	log.Printf("raw TCP floor: %d connections", *conns)
	s := startServer(dir, "tcp")
	defer s.kill()
	lg := loadgen(dir, "-tcp", "-url", s.ws, "-conns", fmt.Sprint(*conns))
	defer lg.stop()
	for s.get("/stats").Conns < *conns {
		time.Sleep(50 * time.Millisecond)
	}
	before := s.get("/stats")
	for i := 1; i <= *rounds; i++ {
		s.broadcast(fmt.Sprintf("count=%d&size=%d", *messages, *size))
		waitCount(lg, int64(i)*int64(*messages)*int64(*conns), 2*time.Minute)
	}
	total := int64(*rounds) * int64(*messages) * int64(*conns)
	after := s.get("/stats")
	r.floorCPU = float64(after.CPUNanos-before.CPUNanos) / float64(total)
}

// fanoutSizes are the room sizes K of the fan-out scenario.
var fanoutSizes = []int{1, 10, 100, 1000}

// fanRep is how many times each room size is measured.
const fanRep = 7

// fanout measures rooms of K members among N = 1,000 and N = -conns
// sessions: a server for each N, side by side, whose first K connections
// join room kK. Each K is measured on both servers back to back, fanRep
// times, so that the machine's drift falls on both alike; the medians are
// kept, and the median of the paired ratios is what the target is judged
// by.
func (r *report) fanout(dir string) {
	ns := []int{1000}
	if *conns != 1000 {
		ns = append(ns, *conns)
	}
	var list []string
	for _, k := range fanoutSizes {
		list = append(list, fmt.Sprint(k))
	}
	type node struct {
		n        int
		s        *server
		lg       *proc
		idleRate float64 // CPU ns per second with no deliveries
		samples  map[int][]float64
		gc       map[int][]float64
	}
	var nodes []*node
	for _, n := range ns {
		log.Printf("fan-out: %d sessions", n)
		// Queues deep enough for a burst of 10,000 events to one member.
		s := startServer(dir, "ginws", "-queue", "16384")
		defer s.kill()
		lg := loadgen(dir, "-url", "ws://"+s.ws+"/ws", "-conns", fmt.Sprint(n), "-rooms", strings.Join(list, ","))
		defer lg.stop()
		for s.get("/stats").Conns < n {
			time.Sleep(50 * time.Millisecond)
		}
		nodes = append(nodes, &node{n: n, s: s, lg: lg, samples: make(map[int][]float64), gc: make(map[int][]float64)})
	}
	// The sessions' own cost (heartbeats, timers) goes on without
	// deliveries: it is measured first and taken out of each window.
	for _, nd := range nodes {
		idle0, t0 := nd.s.get("/stats"), time.Now()
		time.Sleep(3 * time.Second)
		nd.idleRate = float64(nd.s.get("/stats").CPUNanos-idle0.CPUNanos) / time.Since(t0).Seconds()
		r.idle = append(r.idle, idleCost{n: nd.n, nsPerSec: nd.idleRate})
	}
	ratios := make(map[int][]float64)
	for range fanRep {
		for _, k := range fanoutSizes {
			var got []float64
			for _, nd := range nodes {
				if k > nd.n {
					continue
				}
				// Three million deliveries in calls of 10,000 (at least
				// 20 events each): with 10,000 sessions a garbage
				// collection costs tens of milliseconds and comes every
				// hundred or so, so shorter runs are lumpy.
				per := max(20, 10000/k)
				calls := max(1, 3000000/(per*k))
				var have int64
				_, _ = fmt.Sscan(nd.lg.ask("count", 10*time.Second), &have)
				before, start := nd.s.get("/stats"), time.Now()
				for c := 1; c <= calls; c++ {
					nd.s.broadcast(fmt.Sprintf("count=%d&size=%d&room=k%d", per, *size, k))
					waitCount(nd.lg, have+int64(c*per*k), 2*time.Minute)
				}
				after := nd.s.get("/stats")
				cpu := float64(after.CPUNanos-before.CPUNanos) - nd.idleRate*time.Since(start).Seconds()
				v := cpu / float64(calls*per*k)
				nd.gc[k] = append(nd.gc[k], float64(after.GCNanos-before.GCNanos)/float64(calls*per*k))
				nd.samples[k] = append(nd.samples[k], v)
				got = append(got, v)
			}
			if len(got) == 2 {
				ratios[k] = append(ratios[k], got[1]/got[0])
			}
		}
	}
	for _, nd := range nodes {
		for _, k := range fanoutSizes {
			if v := nd.samples[k]; len(v) > 0 {
				r.fans = append(r.fans, fan{n: nd.n, k: k, cpuPerDel: median(v), gcPerDel: median(nd.gc[k])})
			}
		}
	}
	for _, k := range fanoutSizes {
		if v := ratios[k]; len(v) > 0 {
			r.fanRatios = append(r.fanRatios, fanRatio{k: k, ratio: median(v), low: slices.Min(v), high: slices.Max(v)})
		}
	}
}

func median(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	return v[len(v)/2]
}

// allocs runs the hub's micro-benchmarks that count allocations per event
// with and without 1,000 recipients.
func (r *report) allocs() {
	log.Printf("allocations per recipient")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^(BenchmarkBroadcastEncodeOnce|BenchmarkEncodeOnly)$",
		"-benchmem", "-benchtime", "20000x", "./hub")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	must(err)
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[len(f)-1] != "allocs/op" {
			continue
		}
		var v float64
		_, _ = fmt.Sscan(f[len(f)-2], &v)
		switch {
		case strings.HasPrefix(f[0], "BenchmarkBroadcastEncodeOnce"):
			r.allocsBroadcast = v
		case strings.HasPrefix(f[0], "BenchmarkEncodeOnly"):
			r.allocsEncode = v
		}
	}
}

func (r *report) plotGroups() []group {
	mem := group{title: "Idle memory per connection", unit: "KiB RSS"}
	lat := group{title: "Ack round trip", unit: "us, log scale", log: true}
	for _, res := range r.results {
		mem.bars = append(mem.bars, bar{res.mode + " idle", res.idleBytes / 1024}, bar{res.mode + " burst", res.burstBytes / 1024})
		lat.bars = append(lat.bars, bar{res.mode + " p50", res.rttAlone[0]}, bar{res.mode + " p99", res.rttAlone[1]},
			bar{res.mode + " p99 load", res.rttLoaded[1]})
	}
	return []group{mem, lat}
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\nWritten by `go run ./bench` (see bench/README.md); every figure comes from one run, with\nthe baselines measured beside ginws on the same machine.\n\n")
	fmt.Fprintf(&b, "Machine: %s.\n\n", r.machineText)
	b.WriteString("## Idle memory per connection (server process, after GC)\n\n| server | RSS idle | heap+stacks idle | RSS after a burst | heap+stacks after a burst |\n|---|---|---|---|---|\n")
	for _, res := range r.results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", res.mode, kib(res.idleBytes), kib(res.idleHeap), kib(res.burstBytes), kib(res.burstHeap))
	}
	fmt.Fprintf(&b, "\n## Broadcast to all %d connections (%d rounds of %d events of %d bytes)\n\n| server | deliveries/s | server CPU per delivery | vs. raw TCP floor |\n|---|---|---|---|\n", *conns, *rounds, *messages, *size)
	for _, res := range r.results {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f ns | %.2f× |\n", res.mode, res.deliveriesPerSec, res.cpuPerDel, res.cpuPerDel/r.floorCPU)
	}
	fmt.Fprintf(&b, "| raw TCP write per delivery (floor) | | %.0f ns | 1.00× |\n", r.floorCPU)
	b.WriteString("\n## Request/ack round trip (200 requests/s, open loop, jittered)\n\n| server | p50 | p99 | p99.9 | p50 while broadcasting at half the maximum | p99 | p99.9 |\n|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		fmt.Fprintf(&b, "| %s | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs |\n", res.mode,
			res.rttAlone[0], res.rttAlone[1], res.rttAlone[2], res.rttLoaded[0], res.rttLoaded[1], res.rttLoaded[2])
	}
	b.WriteString("\n(melody's round trip is an echo of the request frame, what a hand-written hub does at best.)\n")
	b.WriteString("\nMeanwhile, how long the broadcast events took from the server's clock to the probe:\n\n| server | p50 | p99 | p99.9 |\n|---|---|---|---|\n")
	for _, res := range r.results {
		fmt.Fprintf(&b, "| %s | %.0f µs | %.0f µs | %.0f µs |\n", res.mode, res.eventsLoaded[0], res.eventsLoaded[1], res.eventsLoaded[2])
	}
	fmt.Fprintf(&b, "\n## Connect storm: %d new connections while broadcasting at half the maximum\n\n| server | connections accepted per second |\n|---|---|\n", *storm)
	for _, res := range r.results {
		fmt.Fprintf(&b, "| %s | %.0f |\n", res.mode, res.stormPerSec)
	}
	b.WriteString("\n## Room fan-out (ginws): server CPU per delivery to K members among N sessions\n\n(Median of seven runs of three million deliveries, the two servers measured in turn; events of 100 bytes in bursts of up to 10,000 deliveries. The CPU the idle sessions use meanwhile, measured over 3 s before, is taken out: ")
	for i, c := range r.idle {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.1f ms per second with %d sessions", c.nsPerSec/1e6, c.n)
	}
	b.WriteString(".)\n\n| N | K | CPU per delivery | of which garbage collection (Go's estimate) |\n|---|---|---|---|\n")
	for _, f := range r.fans {
		fmt.Fprintf(&b, "| %d | %d | %.0f ns | %.0f ns |\n", f.n, f.k, f.cpuPerDel, f.gcPerDel)
	}
	if len(r.fanRatios) > 0 {
		fmt.Fprintf(&b, "\nCost with %d sessions over the cost with 1,000, median of the paired runs:", *conns)
		for i, f := range r.fanRatios {
			sep := ","
			if i == len(r.fanRatios)-1 {
				sep = "."
			}
			fmt.Fprintf(&b, " K = %d: %.2f (runs %.2f to %.2f)%s", f.k, f.ratio, f.low, f.high, sep)
		}
		b.WriteString("\n")
	}
	b.WriteString(r.multiNodeMarkdown())
	b.WriteString(r.herdMarkdown())
	b.WriteString(r.deployMarkdown())
	fmt.Fprintf(&b, "\n## Allocations\n\nAn event sent to 1,000 sessions: %.0f allocations; encoding it alone: %.0f (`go test -bench 'BroadcastEncodeOnce|EncodeOnly' -benchmem ./hub`).\n", r.allocsBroadcast, r.allocsEncode)
	b.WriteString(r.targets())
	return b.String()
}

// targets says which of the targets in issue 10 this run met.
func (r *report) targets() string {
	var b strings.Builder
	b.WriteString("\n## Targets\n\n| target | this run | met |\n|---|---|---|\n")
	row := func(target, got string, met bool) {
		yes := "no"
		if met {
			yes = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", target, got, yes)
	}
	var g *result
	for i := range r.results {
		if r.results[i].mode == "ginws" {
			g = &r.results[i]
		}
	}
	if g != nil {
		row("idle memory per connection at most 14 KiB", kib(g.idleBytes)+" RSS", g.idleBytes <= 14<<10)
		ratio := g.cpuPerDel / r.floorCPU
		row("broadcast CPU per delivery at most 1.3× the raw floor", fmt.Sprintf("%.2f×", ratio), ratio <= 1.3)
		row("under load, events batched below the floor", fmt.Sprintf("%.2f×", ratio), ratio < 1)
		row("ack p99 under 5 ms while broadcasting at half the maximum", fmt.Sprintf("%.1f ms", g.rttLoaded[1]/1000), g.rttLoaded[1] > 0 && g.rttLoaded[1] < 5000)
	}
	worst, at := 0.0, 0
	for _, f := range r.fanRatios {
		if d := f.ratio - 1; at == 0 || math.Abs(d) > math.Abs(worst) {
			worst, at = d, f.k
		}
	}
	if at > 0 {
		row("fan-out cost per delivery within 10% between N = 1,000 and N = "+fmt.Sprint(*conns),
			fmt.Sprintf("largest difference %+.0f%% (K = %d; median of %d paired runs)", 100*worst, at, fanRep), math.Abs(worst) <= 0.10)
	}
	r.multiNodeTargets(row)
	row("no allocation per recipient", fmt.Sprintf("%.0f allocations per event to 1,000 sessions, %.0f to encode it", r.allocsBroadcast, r.allocsEncode),
		r.allocsEncode > 0 && r.allocsBroadcast-r.allocsEncode < 10)
	return b.String()
}
