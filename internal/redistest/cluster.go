package redistest

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters with one replica each, every
// one a redis-server process on loopback, stopped when the test ends.
type Cluster struct {
	t     T
	Nodes []*Server
}

// StartCluster starts six redis-server processes in cluster mode and joins
// them with redis-cli --cluster create. A master that stops answering is
// failed over within about two seconds (cluster-node-timeout 1 s).
func StartCluster(t T) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli is not installed: run `make deps` (Debian package redis-tools)")
	}
	dir := t.TempDir()
	c := &Cluster{t: t}
	for range 6 {
		s := newServer(t)
		// The bus port is chosen too: port+10000 may be taken, or past 65535.
		s.extra = func() []string {
			return []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(freePort(t)),
				"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(s.Port)+".conf"),
				"--cluster-node-timeout", "1000", "--dir", dir}
		}
		s.start(true)
		c.Nodes = append(c.Nodes, s)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitReady()
	return c
}

// Addrs lists every node's host:port.
func (c *Cluster) Addrs() []string {
	var addrs []string
	for _, s := range c.Nodes {
		if s.cmd != nil {
			addrs = append(addrs, s.Addr())
		}
	}
	return addrs
}

// WaitReady waits until every running node reports the cluster ok and
// every replica has synchronised with its master: a replica that never
// did would not take over from it.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, s := range c.Nodes {
			if s.cmd == nil {
				continue
			}
			info, err := s.try("CLUSTER", "INFO")
			if err != nil || !strings.Contains(info.(string), "cluster_state:ok") {
				ok = false
				break
			}
			repl, err := s.try("INFO", "replication")
			if err != nil || strings.Contains(repl.(string), "role:slave") && !strings.Contains(repl.(string), "master_link_status:up") {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("redis cluster did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client() *goredis.ClusterClient {
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// MasterOf returns the node that serves key's slot now.
func (c *Cluster) MasterOf(key string) *Server {
	c.t.Helper()
	slot := c.Nodes[0].Do("CLUSTER", "KEYSLOT", key).(int64)
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		role, err := s.try("ROLE")
		if err != nil || role.([]any)[0] != "master" {
			continue
		}
		for _, line := range strings.Split(s.Do("CLUSTER", "NODES").(string), "\n") {
			f := strings.Fields(line)
			if len(f) < 9 || !strings.Contains(f[2], "myself") {
				continue
			}
			for _, r := range f[8:] {
				lo, hi, _ := strings.Cut(r, "-")
				if hi == "" {
					hi = lo
				}
				l, _ := strconv.ParseInt(lo, 10, 64)
				h, _ := strconv.ParseInt(hi, 10, 64)
				if l <= slot && slot <= h {
					return s
				}
			}
		}
	}
	c.t.Fatalf("no master serves the slot of %q", key)
	return nil
}

// ReplicaOf returns a replica of master.
func (c *Cluster) ReplicaOf(master *Server) *Server {
	c.t.Helper()
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		if role, err := s.try("ROLE"); err == nil && role.([]any)[0] == "slave" && role.([]any)[2] == int64(master.Port) {
			return s
		}
	}
	c.t.Fatalf("%s has no replica", master)
	return nil
}

// try runs one command, returning its error.
func (s *Server) try(args ...any) (any, error) {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}
