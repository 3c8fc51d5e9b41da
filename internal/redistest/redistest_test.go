package redistest

import (
	"net"
	"testing"
)

// A port taken between freePort and redis-server's bind (by a busy
// machine's outgoing connection) must not fail the test that wanted a Redis.
func TestStartSurvivesATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	s := newServer(t)
	s.Port = taken
	s.start(true)
	if s.Port == taken {
		t.Fatalf("started on the taken port %d", taken)
	}
	if got := s.Do("PING"); got != "PONG" {
		t.Fatalf("PING answered %v", got)
	}
}
