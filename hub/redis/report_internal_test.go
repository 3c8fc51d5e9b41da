package redis

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Losses are reported at most once a second even when batches that go
// through come between those that fail: on a cluster, a healthy master's
// between those of one that is down.
func TestLossReportsAtMostOnceASecond(t *testing.T) {
	var reports atomic.Int32
	b, err := New(Options{URL: "redis://127.0.0.1:1", AsyncPublish: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	b.ctx = context.Background()
	b.report = func(error) { reports.Add(1) }
	start := time.Now()
	for range 50 {
		b.unsentReport(1, errors.New("down")) // a batch of the master that is down
		b.unsentReport(0, nil)                // one of a healthy master
	}
	if n, most := reports.Load(), int32(time.Since(start)/time.Second)+1; n > most {
		t.Fatalf("%d reports in %v, want at most %d", n, time.Since(start), most)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unsent != 0 {
		t.Fatalf("%d losses never reported", b.unsent)
	}
}
