// Package redistest runs a real redis-server, or a Redis Cluster of them, on
// free loopback ports for tests (and the benchmark suite), with no
// persistence, and stops them when the test ends.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// T is what the servers need of their owner: *testing.T and *testing.B have
// it, and the benchmark suite has its own.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Error(args ...any)
	Cleanup(func())
	TempDir() string
}

// Server is one redis-server process.
type Server struct {
	t    T
	Port int
	// extra returns the arguments beyond the port and the defaults; it is
	// called for every launch, so it may pick ports of its own.
	extra func() []string
	cmd   *exec.Cmd
	done  chan struct{}
}

// Start runs redis-server on a free 127.0.0.1 port. redis-server must be
// installed (make test installs Debian's package); the test fails if not.
func Start(t T) *Server {
	t.Helper()
	s := newServer(t)
	s.start(true)
	return s
}

// newServer returns a Server on a free port, stopped when the test ends.
func newServer(t T) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: run `make deps` (Debian package redis-server)")
	}
	s := &Server{t: t, Port: freePort(t)}
	t.Cleanup(s.Stop)
	return s
}

func freePort(t T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// PID is the process id while the server runs, else 0.
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// start runs redis-server and waits until it answers. A port picked by
// freePort is free only until it is closed: a busy machine's outgoing
// connections can take it before redis-server binds it. A server that exits
// before answering is therefore started again, on fresh ports unless it must
// keep its own (Restart).
func (s *Server) start(fresh bool) {
	s.t.Helper()
	var out string
	for attempt := range 5 {
		if attempt > 0 && fresh {
			s.Port = freePort(s.t)
		}
		ok, o := s.launch()
		if ok {
			return
		}
		out = o
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not start; it said:\n%s", s.Addr(), out)
}

// launch starts one process and reports whether it answered; if it
// exited first, its output says why.
func (s *Server) launch() (bool, string) {
	s.t.Helper()
	args := []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"}
	if s.extra != nil {
		args = append(args, s.extra()...)
	}
	var out head
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	// Short time-outs: whatever holds the port when ours did not get it
	// may accept and never answer.
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		// Another test's redis-server may have won the port: only our
		// own process counts as started.
		if err == nil && strings.Contains(info, "process_id:"+strconv.Itoa(cmd.Process.Pid)+"\r\n") {
			return true, ""
		}
		select {
		case <-done:
			s.cmd = nil
			return false, out.String()
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer in 30 s: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Error("redis-server did not exit")
	}
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start(false)
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client() *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Do runs one command, failing the test on error.
func (s *Server) Do(args ...any) any {
	s.t.Helper()
	v, err := s.try(args...)
	if err != nil {
		s.t.Fatalf("redis %v: %v", args, err)
	}
	return v
}

// String formats the server for logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server on %s", s.Addr()) }

// head keeps the first 4 KiB written to it: why redis-server would not
// start, without growing through a long test's log.
type head struct{ b []byte }

func (h *head) Write(p []byte) (int, error) {
	h.b = append(h.b, p[:min(len(p), max(0, 4096-len(h.b)))]...)
	return len(p), nil
}

func (h *head) String() string { return string(h.b) }
