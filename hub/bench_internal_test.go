package hub

import (
	"fmt"
	"log/slog"
	"strconv"
	"testing"
)

// benchHub builds a hub with n sessions, the first k of them in room "r".
// The sessions have no connection: their writer is marked running so that
// the benchmark measures the hub's routing and queueing, not the network
// (bench/ measures that against real sockets).
func benchHub(n, k int) (*Hub, []*Session) {
	h := New(Options{Logger: slog.New(slog.DiscardHandler), SendQueueFrames: 1 << 20, SendQueueBytes: 1 << 30})
	r := &room{members: make(map[*Session]*member)}
	h.rooms["r"] = r
	sessions := make([]*Session, n)
	for i := range sessions {
		s := &Session{hub: h, id: strconv.Itoa(i), rooms: map[string]struct{}{}}
		s.out = newOutbox(h, nil, s) // held: nothing is written
		sessions[i] = s
		h.sessions[s] = struct{}{}
		if i < k {
			r.members[s] = &member{}
			s.rooms["r"] = struct{}{}
		}
	}
	return h, sessions
}

func drain(sessions []*Session) {
	for _, s := range sessions {
		o := &s.out
		clear(o.msgs)
		o.msgs, o.bytes, o.count = o.msgs[:0], 0, 0
		o.latest = nil
	}
}

// BenchmarkRoomFanout reports the cost per delivery of an event to K room
// members among N sessions: it must not grow with N.
func BenchmarkRoomFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, k := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("N=%d/K=%d", n, k), func(b *testing.B) {
				h, sessions := benchHub(n, k)
				members := sessions[:k]
				data := map[string]string{"user": "alice", "text": "hello"}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := h.To("r").Emit("chat.message", data); err != nil {
						b.Fatal(err)
					}
					if i++; i%256 == 0 {
						b.StopTimer()
						drain(members)
						b.StartTimer()
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k), "ns/delivery")
			})
		}
	}
}

// BenchmarkBroadcastEncodeOnce sends to every one of 1,000 sessions: the
// allocations per operation stay those of one encoding, whatever the count
// of recipients (compare allocs/op with BenchmarkEncodeOnly).
func BenchmarkBroadcastEncodeOnce(b *testing.B) {
	h, sessions := benchHub(1000, 0)
	data := map[string]string{"user": "alice", "text": "hello"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := h.All().Emit("announcement", data); err != nil {
			b.Fatal(err)
		}
		if i++; i%256 == 0 {
			b.StopTimer()
			drain(sessions)
			b.StartTimer()
		}
	}
}

// BenchmarkEncodeOnly is the baseline of BenchmarkBroadcastEncodeOnce.
func BenchmarkEncodeOnly(b *testing.B) {
	data := map[string]string{"user": "alice", "text": "hello"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeEvent("announcement", "", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEnvelope measures the per-frame cost of reading the envelope.
func BenchmarkDecodeEnvelope(b *testing.B) {
	frame := []byte(`{"type":"chat.send","id":"42","data":{"room":"lobby","text":"hello there"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEnvelope(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// A message from another node reaches this node's members without an
// allocation per recipient: the broker decoded it once, and every member's
// queue holds the same bytes, with history offsets or without.
func TestDeliveryFromAnotherNodeAllocatesNothingPerRecipient(t *testing.T) {
	h, sessions := benchHub(1000, 1000)
	for _, history := range []bool{false, true} {
		m := Message{Kind: TargetRoom, Room: "r", Payload: []byte(`{"type":"n","room":"r","data":1}`)}
		deliver := func() {
			if history {
				m.Epoch, m.Offset = "e", m.Offset+1
			}
			h.deliver(m)
			for _, s := range sessions {
				if got := s.out.msgs[0].data; &got[0] != &m.Payload[0] {
					t.Fatalf("session %s got a copy", s.id)
				}
			}
			drain(sessions)
		}
		deliver() // the queues grow to their size once
		if allocs := testing.AllocsPerRun(20, deliver); allocs != 0 {
			t.Errorf("history %v: %.1f allocations per message to 1,000 members", history, allocs)
		}
	}
}

// BenchmarkDashboard is a dashboard of 100 keys in a room of 10,000
// sessions, 5% of which read nothing (their queues are held) while the
// others take each event: each operation is one update of every key (at 10 updates per second per key,
// one second of the feed is 10 operations). It reports the cost per
// delivery of queueing, and what waits per slow session at the end: with
// Latest, one event per key however long the feed; without, every update
// (with the default SendQueueBytes such a session is closed with 1013 after
// some 10 s of this feed).
func BenchmarkDashboard(b *testing.B) {
	const n, keys = 10000, 100
	for _, latest := range []bool{true, false} {
		b.Run(fmt.Sprint("latest=", latest), func(b *testing.B) {
			h, sessions := benchHub(n, n)
			slow, fast := sessions[:n/20], sessions[n/20:]
			keyNames := make([]string, keys)
			for k := range keyNames {
				keyNames[k] = fmt.Sprintf("cpu:node-%d", k)
			}
			type gauge struct {
				Key   string  `json:"key"`
				Value float64 `json:"value"`
				At    int64   `json:"at"`
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for k, key := range keyNames {
					to := h.To("r")
					if latest {
						to = to.Latest(key)
					}
					if err := to.Emit("gauge", gauge{key, float64(i*k%977) / 10, int64(i)}); err != nil {
						b.Fatal(err)
					}
					// The fast readers' writers take each event.
					b.StopTimer()
					drain(fast)
					b.StartTimer()
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*keys*n), "ns/delivery")
			var queued int
			for _, s := range slow {
				queued += int(s.out.bytes)
			}
			b.ReportMetric(float64(queued)/float64(len(slow)), "queued-B/slow-session")
		})
	}
}
