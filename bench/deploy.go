package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ginws/ginws/client"
)

// deployRun is a rolling deploy (issue 18): node A's sessions move to node B
// while events keep flowing, with or without a drain window.
type deployRun struct {
	drain time.Duration
	// Peak handshakes per second on B (over 100 ms), and the seconds from
	// A's shutdown until every client had a session on B.
	peakPerSec, seconds float64
	// Ack round trips (µs) of B's own sessions during the move.
	ack [3]float64
	// Rejoins that did not recover (the client is told: it reloads), and
	// offsets the clients never got without being told.
	unrecovered, lost int64
	events            int64 // events the clients got
	published         int64 // events B published, one call after the other
}

// deploy moves -deploy clients of the Go client from node A to node B, both
// on one Redis, through a load balancer that sends new connections to A
// while its health check passes. Each client is in one of 100 rooms that
// keep their history; B publishes into them while A shuts down.
func (r *report) deploy(dir string) {
	for _, drain := range []time.Duration{0, 5 * time.Second} {
		r.deploys = append(r.deploys, deployOnce(dir, drain))
	}
}

func deployOnce(dir string, drain time.Duration) deployRun {
	log.Printf("rolling deploy: %d clients, drain %v", *deployN, drain)
	t := &benchT{}
	defer t.close()
	flags, _ := startBackend(t, oneRedis)
	args := append([]string{"-history", "1000", "-drain", drain.String()}, flags...)
	a, b := startServer(dir, "ginws", args...), startServer(dir, "ginws", args...)
	defer a.kill()
	defer b.kill()
	// Two balancers, each with half the clients: one process could not
	// hold 20,000 sockets within the usual file descriptor limit.
	var lbs []string
	for range 2 {
		p := start(filepath.Join(dir, "loadgen"), "-balance", a.ws+","+b.ws, "-health", "http://"+a.control+"/healthz")
		defer p.stop()
		var addr string
		_, err := fmt.Sscanf(p.line(20*time.Second), "balancing %s", &addr)
		must(err)
		lbs = append(lbs, addr)
	}

	res := deployRun{drain: drain}
	var unrecovered, lost, events atomic.Int64
	clients := make([]*client.Client, *deployN)
	// reload[i]: client i was told it could not recover; the application
	// would reload the room, so its next gap is not a silent loss.
	reload := make([]atomic.Bool, *deployN)
	var last sync.Map // client index -> last offset seen
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	var joins sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i := range clients {
		user := fmt.Sprintf("u%d", i)
		c, err := client.New(client.Options{URL: "ws://" + lbs[i%2] + "/ws", Logger: quiet,
			Token: func(context.Context) (string, error) { return user, nil },
			OnRecover: func(_ string, ok bool) {
				if !ok {
					unrecovered.Add(1)
					reload[i].Store(true)
				}
			}})
		must(err)
		client.On(c, "tick", func(ev client.Event, _ any) {
			events.Add(1)
			prev, _ := last.Swap(i, ev.Offset)
			if p, ok := prev.(uint64); ok && ev.Offset > p+1 && !reload[i].Swap(false) {
				lost.Add(int64(ev.Offset - p - 1))
			}
		})
		clients[i] = c
		sem <- struct{}{}
		joins.Go(func() {
			defer func() { <-sem }()
			_, err := c.Join(ctx, fmt.Sprintf("d%d", i%100))
			must(err)
		})
	}
	joins.Wait()
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()

	// B's own sessions, timed during the move; B publishes into the rooms.
	probe := loadgen(dir, "-probe", "-url", "ws://"+b.ws+"/ws", "-conns", "16", "-first", "60", "-sources", "1")
	defer probe.stop()
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	pubs.Go(func() {
		for j := 0; ; j++ {
			select {
			case <-stop:
				res.published = int64(j)
				return
			case <-time.After(5 * time.Millisecond):
			}
			b.broadcast(fmt.Sprintf("count=1&size=%d&room=d%d", *size, j%100))
		}
	})
	time.Sleep(time.Second) // events flowing before the deploy

	start := time.Now()
	done := make(chan struct{})
	go func() {
		res.ack, _ = rtt(probe, fmt.Sprintf("rtt 200 %.0f", (drain+5*time.Second).Seconds()))
		close(done)
	}()
	a.post("/shutdown")
	prev, peak := b.get("/stats").Conns, 0
	for tick := time.NewTicker(100 * time.Millisecond); ; <-tick.C {
		n := b.get("/stats").Conns
		peak = max(peak, n-prev)
		prev = n
		if n >= *deployN+16 {
			res.seconds = time.Since(start).Seconds()
			tick.Stop()
			break
		}
		if time.Since(start) > 3*time.Minute {
			log.Fatalf("rolling deploy: only %d of %d clients came back", n-16, *deployN)
		}
	}
	res.peakPerSec = float64(peak) * 10
	<-done
	close(stop)
	pubs.Wait()
	// The last events reach everyone: each room's newest offset arrives.
	time.Sleep(2 * time.Second)
	res.unrecovered, res.lost, res.events = unrecovered.Load(), lost.Load(), events.Load()
	return res
}

func (r *report) deployMarkdown() string {
	if len(r.deploys) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## A rolling deploy\n\n%d Go clients on node A, in 100 rooms that keep their history, behind a load balancer that sends new connections to A while its health check (every 100 ms) passes; node B beside it on one Redis publishes into the rooms, an event every 5 ms or so (published: from a second before the deploy until every client is back). A shuts down; the clients come back on B. Ack round trips of 16 sessions of B's own, 200 a second, during the move.\n\n| drain window | peak handshakes/s on B | all back after | ack p50 on B | p99 | p99.9 | rejoins not recovered | events lost silently | published | received |\n|---|---|---|---|---|---|---|---|---|---|\n", *deployN)
	for _, d := range r.deploys {
		fmt.Fprintf(&b, "| %v | %.0f | %.1f s | %.0f µs | %.0f µs | %.0f µs | %d | %d | %d | %d |\n", d.drain, d.peakPerSec, d.seconds, d.ack[0], d.ack[1], d.ack[2], d.unrecovered, d.lost, d.published, d.events)
	}
	return b.String()
}
