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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	modes    = flag.String("modes", "ginws,melody", "servers to measure beside the raw floor, comma-separated")
	fanouts  = flag.Bool("fanout", true, "measure room fan-out")
	writers  = flag.Int("writers", 0, "hub.Options.Writers of the ginws server (0: its default)")
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
	for _, mode := range strings.Split(*modes, ",") {
		r.scenario(dir, mode)
	}
	r.floor(dir)
	if *fanouts {
		r.fanout(dir)
	}
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

func startServer(dir, mode string) *server {
	p := start(filepath.Join(dir, "server"), "-mode", mode, "-writers", fmt.Sprint(*writers))
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

func (s *server) broadcast(q string) {
	resp, err := http.Post("http://"+s.control+"/broadcast?"+q, "text/plain", nil)
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
		time.Sleep(20 * time.Millisecond)
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
	stormPerSec                 float64
}

type fan struct {
	n, k      int
	cpuPerDel float64
}

type report struct {
	machineText string
	results     []result
	floorCPU    float64
	fans        []fan
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
	res.rttAlone = rtt(probe, "rtt 200 3")
	// The same while broadcasting at about half the measured maximum.
	perSec := res.deliveriesPerSec / 2 / n
	interval := time.Duration(float64(time.Second) / perSec)
	count := int(4 * perSec)
	done := make(chan struct{})
	go func() {
		s.broadcast(fmt.Sprintf("count=%d&size=%d&interval=%s", count, *size, interval))
		close(done)
	}()
	res.rttLoaded = rtt(probe, "rtt 200 3")
	<-done

	// Connect storm: new connections per second while broadcasting.
	done = make(chan struct{})
	go func() {
		s.broadcast(fmt.Sprintf("count=%d&size=%d&interval=%s", count, *size, interval))
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

func rtt(lg *proc, cmd string) [3]float64 {
	var p [3]float64
	var n int
	_, _ = fmt.Sscan(lg.ask(cmd, time.Minute), &p[0], &p[1], &p[2], &n)
	return p
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

// fanout measures a room of K members among N sessions.
func (r *report) fanout(dir string) {
	sizes := []int{1000}
	if *conns != 1000 {
		sizes = append(sizes, *conns)
	}
	for _, n := range sizes {
		for _, k := range []int{100, 1000} {
			if k > n {
				continue
			}
			log.Printf("fan-out: %d of %d", k, n)
			s := startServer(dir, "ginws")
			lg := loadgen(dir, "-url", "ws://"+s.ws+"/ws", "-conns", fmt.Sprint(n), "-room", "r", "-members", fmt.Sprint(k))
			for s.get("/stats").Conns < n {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // joins handled
			// The same number of deliveries for every K, in rounds that fit
			// the members' send queues (a faster sender would be a slow
			// consumer's problem, closed with 1013).
			msgs := 5000 * 100 / k
			before := s.get("/stats")
			for sent := 0; sent < msgs; sent += 100 {
				s.broadcast(fmt.Sprintf("count=100&size=%d&room=r", *size))
				waitCount(lg, int64((sent+100)*k), 2*time.Minute)
			}
			after := s.get("/stats")
			r.fans = append(r.fans, fan{n: n, k: k, cpuPerDel: float64(after.CPUNanos-before.CPUNanos) / float64(msgs*k)})
			lg.stop()
			s.kill()
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
	fmt.Fprintf(&b, "\n## Connect storm: %d new connections while broadcasting at half the maximum\n\n| server | connections accepted per second |\n|---|---|\n", *storm)
	for _, res := range r.results {
		fmt.Fprintf(&b, "| %s | %.0f |\n", res.mode, res.stormPerSec)
	}
	b.WriteString("\n## Room fan-out (ginws): server CPU per delivery to K members among N sessions\n\n| N | K | CPU per delivery |\n|---|---|---|\n")
	for _, f := range r.fans {
		fmt.Fprintf(&b, "| %d | %d | %.0f ns |\n", f.n, f.k, f.cpuPerDel)
	}
	return b.String()
}
