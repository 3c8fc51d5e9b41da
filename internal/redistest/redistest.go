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
	args []string // beyond the port and the defaults
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs redis-server on a free 127.0.0.1 port. redis-server must be
// installed (make test installs Debian's package); the test fails if not.
func Start(t T) *Server {
	t.Helper()
	s := newServer(t)
	s.start()
	return s
}

// newServer returns a Server on a free port, stopped when the test ends.
func newServer(t T, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: run `make deps` (Debian package redis-server)")
	}
	s := &Server{t: t, Port: freePort(t), args: args}
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

func (s *Server) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"}, s.args...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not start: %v", s.Addr(), err)
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
	s.start()
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
