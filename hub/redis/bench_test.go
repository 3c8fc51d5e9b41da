package redis_test

import (
	"context"
	"log/slog"
	"testing"

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
