package main

import (
	"fmt"
	"log"
	"strings"
	"time"
)

// herdRun is a node taking a crowd of reconnecting clients at once, as when
// another node went away (issue 18), with or without admission.
type herdRun struct {
	admit              int     // middleware.Options.AdmitRate (and burst); 0: none
	seconds            float64 // until every client was in
	attempts, refusals int64
	gaveUp             int64
	// Round trips (µs) of the sessions already there, p50, p99, p99.9,
	// over the first seconds of the crowd.
	ack [3]float64
}

// herd measures -herd clients connecting to one node at once, retrying as
// ginws's clients do (Retry-After and as much again in jitter), with the
// middleware's default admission and without any.
func (r *report) herd(dir string) {
	for _, admit := range []int{0, 1000} {
		log.Printf("herd: %d clients at once, admission %d/s", *herdN, admit)
		s := startServer(dir, "ginws", "-admit", fmt.Sprint(admit))
		url := "ws://" + s.ws + "/ws"
		probe := loadgen(dir, "-probe", "-url", url, "-conns", "16", "-first", "60", "-sources", "1")
		lg := loadgen(dir, "-url", url, "-conns", "0")
		res := herdRun{admit: admit}
		done := make(chan struct{})
		go func() {
			res.ack, _ = rtt(probe, "rtt 200 2")
			close(done)
		}()
		_, _ = fmt.Sscan(lg.ask(fmt.Sprintf("herd %d", *herdN), 3*time.Minute), &res.seconds, &res.attempts, &res.refusals, &res.gaveUp)
		<-done
		probe.stop()
		lg.stop()
		s.kill()
		r.herds = append(r.herds, res)
	}
}

func (r *report) herdMarkdown() string {
	if len(r.herds) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## A crowd reconnecting to one node\n\n%d clients connect at once (up to 1,000 dials in flight), retrying as ginws's clients do: after a 503, its Retry-After and as much again in jitter. Ack round trips of 16 sessions already on the node, 200 a second over the first 2 s, while both crowds are still coming in.\n\n| admission | all in after | attempts | refused | gave up | ack p50 | p99 | p99.9 |\n|---|---|---|---|---|---|---|---|\n", *herdN)
	for _, h := range r.herds {
		admit := "none"
		if h.admit > 0 {
			admit = fmt.Sprintf("%d/s, burst %d", h.admit, h.admit)
		}
		fmt.Fprintf(&b, "| %s | %.1f s | %d | %d | %d | %.0f µs | %.0f µs | %.0f µs |\n", admit, h.seconds, h.attempts, h.refusals, h.gaveUp, h.ack[0], h.ack[1], h.ack[2])
	}
	return b.String()
}
