package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/internal/redistest"
)

// BenchmarkCrossNode measures a message from one node to a room member's
// node: publish, carry, decode, hand to the hub. Each sub-benchmark reports
// the same operation on the in-memory bus (the baseline) and on Redis.
func BenchmarkCrossNode(b *testing.B) {
	srv := redistest.Start(b)
	brokers := map[string]func() hub.Broker{
		"memory": func() hub.Broker { return hub.NewMemoryBus().Broker() },
	}
	bus := hub.NewMemoryBus()
	brokers["memory"] = bus.Broker
	brokers["redis"] = func() hub.Broker {
		r, err := redis.New(redis.Options{URL: srv.URL(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	payload := []byte(`{"type":"chat.message","room":"lobby","data":{"user":"alice","text":"hello"}}`)
	for _, name := range []string{"memory", "redis"} {
		pub, sub := brokers[name](), brokers[name]()
		got := make(chan struct{}, 1024)
		if err := pub.Start(func(hub.Message) {}, func(error) {}); err != nil {
			b.Fatal(err)
		}
		if err := sub.Start(func(hub.Message) { got <- struct{}{} }, func(error) {}); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := sub.Subscribe(ctx, "lobby"); err != nil {
			b.Fatal(err)
		}
		m := hub.Message{Kind: hub.TargetRoom, Room: "lobby", Payload: payload}
		// Wait for the subscription to be live.
		for ready := false; !ready; {
			_ = pub.Publish(ctx, m)
			select {
			case <-got:
				ready = true
			default:
			}
		}
		b.Run(name+"/latency", func(b *testing.B) {
			for b.Loop() {
				if err := pub.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
		b.Run(name+"/throughput", func(b *testing.B) {
			const window = 256
			inflight := 0
			for b.Loop() {
				if err := pub.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
				if inflight++; inflight == window {
					for ; inflight > 0; inflight-- {
						<-got
					}
				}
			}
			for ; inflight > 0; inflight-- {
				<-got
			}
		})
		_ = pub.Close()
		_ = sub.Close()
	}
}

// BenchmarkPublishHistory publishes events with history to one room or
// round-robin to 300, from one goroutine and from 32 at once, waiting for
// Redis or not (AsyncPublish), to a member on a second node, and reports the CPU of this process (both nodes) and of
// redis-server per event beside the time. The in-memory bus (no history: it
// keeps none) is the floor.
func BenchmarkPublishHistory(b *testing.B) {
	srv := redistest.Start(b)
	payload := []byte(`{"type":"chat.message","room":"lobby","data":{"user":"alice","text":"hello"}}`)
	opts := hub.HistoryOptions{Size: 100}
	redisCPU := func() time.Duration {
		info := srv.Do("INFO", "cpu").(string)
		var total float64
		for _, line := range strings.Split(info, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
		return time.Duration(total * float64(time.Second))
	}
	selfCPU := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, name := range []string{"memory", "redis", "redis-async"} {
		for _, sub := range []struct{ rooms, publishers int }{{1, 1}, {1, 32}, {300, 32}} {
			rooms, publishers := sub.rooms, sub.publishers
			b.Run(fmt.Sprintf("%s/rooms=%d/publishers=%d", name, rooms, publishers), func(b *testing.B) {
				var publish func(context.Context, hub.Message) error
				got := make(chan struct{}, 1<<16)
				deliver := func(hub.Message) { got <- struct{}{} }
				var pub, sub hub.Broker
				if name == "memory" {
					bus := hub.NewMemoryBus()
					pub, sub = bus.Broker(), bus.Broker()
					publish = pub.Publish
				} else {
					r := newBenchBroker(b, srv, name == "redis-async")
					pub, sub = r, newBenchBroker(b, srv, false)
					publish = func(ctx context.Context, m hub.Message) error { return r.PublishHistory(ctx, m, opts) }
				}
				require.NoError(b, pub.Start(func(hub.Message) {}, func(error) {}))
				require.NoError(b, sub.Start(deliver, func(error) {}))
				names := make([]string, rooms)
				for i := range names {
					names[i] = "room" + strconv.Itoa(i)
					require.NoError(b, sub.Subscribe(b.Context(), names[i]))
				}
				b.Cleanup(func() { _, _ = pub.Close(), sub.Close() })
				cpu0, rcpu0 := selfCPU(), redisCPU()
				var n atomic.Int64
				loop := func(more func() bool) {
					for more() {
						m := hub.Message{Kind: hub.TargetRoom, Room: names[int(n.Add(1))%rooms], Payload: payload}
						if err := publish(b.Context(), m); err != nil {
							b.Error(err)
							return
						}
					}
				}
				if publishers == 1 {
					loop(b.Loop)
				} else {
					b.SetParallelism(publishers / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) { loop(pb.Next) })
				}
				for range n.Load() {
					<-got
				}
				b.ReportMetric(float64(selfCPU()-cpu0)/float64(n.Load()), "cpu-ns/op")
				b.ReportMetric(float64(redisCPU()-rcpu0)/float64(n.Load()), "redis-cpu-ns/op")
			})
		}
	}
}

func newBenchBroker(b *testing.B, srv *redistest.Server, async bool) *redis.Broker {
	r, err := redis.New(redis.Options{URL: srv.URL(), AsyncPublish: async, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	return r
}
