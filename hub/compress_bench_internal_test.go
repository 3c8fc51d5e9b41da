package hub

import (
	"fmt"
	"testing"
)

// byteCount is a writer that counts the bytes written to it.
type byteCount struct{ n int64 }

func (c *byteCount) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkCompressedWrites reports the writers' cost per delivery, and the
// bytes a delivery puts on the wire, for an event sent to 1,000 sessions:
// the example's chat message and a 2 KB dashboard update, one per frame and
// 16 per array frame (a session that fell behind). Modes: plain; compressed
// once for all sessions (the hub); compressed for each session, which is
// what a compressor per connection costs (the baseline). MinSize is 0 here,
// so that the chat message is compressed too; by default (256) it goes
// plain.
func BenchmarkCompressedWrites(b *testing.B) {
	chat, _ := encodeEvent("chat.message", "lobby", map[string]any{"user": "alice", "text": "hello, is anyone around this afternoon?"})
	type metric struct {
		Name  string  `json:"name"`
		Host  string  `json:"host"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}
	var metrics []metric
	for i := 0; len(metrics) < 36; i++ {
		for _, n := range []string{"api.latency.p50", "api.latency.p99", "queue.depth"} {
			metrics = append(metrics, metric{n, fmt.Sprintf("node-%d", i), float64(i*37%1000) + 0.25, "ms"})
		}
	}
	dash, _ := encodeEvent("dashboard", "ops", map[string]any{"at": 1764500000000, "metrics": metrics})
	const sessions = 1000
	z := &Compression{Enabled: true, MinSize: 0, Level: 1}
	for _, p := range []struct {
		name string
		data []byte
	}{{"chat", chat}, {"dashboard", dash}} {
		for _, batch := range []int{1, 16} {
			for _, mode := range []string{"plain", "deflate-once", "deflate-each"} {
				b.Run(fmt.Sprintf("%s-%dB/batch=%d/%s", p.name, len(p.data), batch, mode), func(b *testing.B) {
					events := make([]outgoing, batch)
					q := make([]outgoing, batch)
					var w byteCount
					for b.Loop() {
						for i := range events {
							// Each event its own bytes, as the hub's are.
							events[i] = outgoing{data: append([]byte(nil), p.data...)}
							if mode == "deflate-once" {
								events[i].shared = new(shared)
							}
						}
						for range sessions {
							copy(q, events)
							var err error
							if mode == "plain" {
								err = writeBatch(&w, q, nil)
							} else {
								err = writeBatch(&w, q, z)
							}
							if err != nil {
								b.Fatal(err)
							}
						}
					}
					deliveries := float64(b.N * sessions * batch)
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
					b.ReportMetric(float64(w.n)/deliveries, "wire-B/delivery")
				})
			}
		}
	}
}
