package redis_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/internal/redistest"
	"github.com/ginws/ginws/internal/wstest"
)

func TestHistoryAcrossNodes(t *testing.T) {
	onEachRedis(t, testHistoryAcrossNodes)
}

func testHistoryAcrossNodes(t *testing.T, r target) {
	a := newNode(t, r, redis.Options{}, hub.Options{})
	b := newNode(t, r, redis.Options{}, hub.Options{})
	c := a.dial(t, "alice")
	first := c.Join("h/lobby", nil)
	require.NoError(t, a.h.To("h/lobby").Emit("n", 1))
	f := c.ReadUntil("n")
	assert.Equal(t, uint64(1), f.Offset, "the publishing node's own member gets it too, through Redis")
	c.Conn.Close()

	for i := 2; i <= 6; i++ {
		require.NoError(t, a.h.To("h/lobby").Emit("n", i))
	}
	// The client comes back on the other node.
	c2 := b.dial(t, "alice")
	c2.Join("h/lobby", &hub.Position{Epoch: first.Epoch, Offset: 1})
	var got []uint64
	for _, f := range c2.Drain() {
		if f.Type == "n" {
			got = append(got, f.Offset)
		}
	}
	assert.Equal(t, []uint64{2, 3, 4, 5, 6}, got, "exactly the missed events, in order, from the other node")

	wrong := b.dial(t, "x").Join("h/lobby", &hub.Position{Epoch: "nope", Offset: 1})
	assert.False(t, wrong.Recovered)
	assert.Equal(t, uint64(6), wrong.Offset)

	events, pos, err := b.h.History(t.Context(), "h/lobby", 2)
	require.NoError(t, err)
	assert.Equal(t, hub.Position{Epoch: first.Epoch, Offset: 6}, pos)
	assert.JSONEq(t, `{"type":"n","room":"h/lobby","data":6,"offset":6}`, string(events[1]))

	if r.srv == nil {
		return
	}
	t.Run("a Redis restart loses the history: a new epoch, no recovery", func(t *testing.T) {
		r.srv.Restart()
		require.Eventually(t, func() bool { return a.h.Health(t.Context()) == nil }, 10*time.Second, 20*time.Millisecond)
		c3 := b.dial(t, "alice")
		res := c3.Join("h/lobby", &hub.Position{Epoch: first.Epoch, Offset: 6})
		assert.False(t, res.Recovered, "the client learns of the gap")
		assert.NotEqual(t, first.Epoch, res.Epoch)
	})
}

func TestHistoryRejoinUnderConcurrentPublishingAcrossNodes(t *testing.T) {
	onEachRedis(t, func(t *testing.T, r target) {
		var nodes []wstest.Node
		for range 2 {
			n := newNode(t, r, redis.Options{}, hub.Options{})
			nodes = append(nodes, wstest.Node{Hub: n.h, URL: n.url})
		}
		wstest.RejoinRace(t, nodes, wstest.Pace{Every: 1, Pause: 500 * time.Microsecond})
	})
}

// A member that stays in a quiet room while its history expires gets the
// events of the history that starts again, whose offsets start at 1.
func TestHistoryExpiresUnderAMember(t *testing.T) {
	r := single(t)
	pub, sub := newNode(t, r, redis.Options{}, hub.Options{}), newNode(t, r, redis.Options{}, hub.Options{})
	c := sub.dial(t, "alice")
	c.Join("short/quiet", nil)
	require.NoError(t, pub.h.To("short/quiet").Emit("n", 1))
	assert.Equal(t, uint64(1), c.ReadUntil("n").Offset)
	metaKey := pub.b.KeyMeta("short/quiet")
	require.Eventually(t, func() bool { return r.srv.Do("EXISTS", metaKey).(int64) == 0 }, 10*time.Second, 10*time.Millisecond, "the history expired")
	require.NoError(t, pub.h.To("short/quiet").Emit("n", 2))
	f := c.ReadUntil("n")
	assert.Equal(t, uint64(1), f.Offset, "a new history")
	assert.JSONEq(t, "2", string(f.Data))
}

// The stream is trimmed in steps (a quarter of the size at a time), but
// what a client gets never shows it: exactly the last Size events are kept
// for recovery.
func TestHistoryServesItsSizeExactly(t *testing.T) {
	srv := single(t).srv
	b := startBroker(t, srv, func(hub.Message) {})
	opts := hub.HistoryOptions{Size: 20}
	for i := 1; i <= 100; i++ {
		m := hub.Message{Kind: hub.TargetRoom, Room: "r", Payload: []byte(fmt.Sprintf(`{"type":"n","data":%d}`, i))}
		require.NoError(t, b.PublishHistory(t.Context(), m, opts))
		assert.LessOrEqual(t, srv.Do("XLEN", b.KeyEvents("r")).(int64), int64(25), "never past the size and a quarter")
	}
	latest, now, err := b.Latest(t.Context(), "r", 50, opts)
	require.NoError(t, err)
	require.Len(t, latest, 20, "Latest gives no more than the size")
	assert.Contains(t, string(latest[0]), `"offset":81`)
	assert.Equal(t, uint64(100), now.Offset)

	events, _, ok, err := b.Since(t.Context(), "r", hub.Position{Epoch: now.Epoch, Offset: 80}, opts)
	require.NoError(t, err)
	assert.True(t, ok, "the last 20 events are there")
	assert.Len(t, events, 20)
	_, _, ok, err = b.Since(t.Context(), "r", hub.Position{Epoch: now.Epoch, Offset: 79}, opts)
	require.NoError(t, err)
	assert.False(t, ok, "21 back is past the size, even while the stream still holds it")

	_, _, _, err = b.Since(t.Context(), "r", hub.Position{Epoch: now.Epoch}, hub.HistoryOptions{})
	assert.ErrorContains(t, err, "size must be positive")
}

// Events published together are kept and sent as runs, one stream entry
// and one message each; readers still get exactly the events they ask for,
// with their own offsets, wherever a run begins or ends.
func TestHistoryOfRuns(t *testing.T) {
	srv := single(t).srv
	var got []hub.Message
	var mu sync.Mutex
	b := startBroker(t, srv, func(m hub.Message) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
	})
	require.NoError(t, b.Subscribe(t.Context(), "r"))
	opts := hub.HistoryOptions{Size: 20}
	event := func(room string, i int) hub.Message {
		return hub.Message{Kind: hub.TargetRoom, Room: room, Payload: []byte(fmt.Sprintf(`{"type":"n","data":%d}`, i))}
	}
	for run := range 3 {
		var ms []hub.Message
		for i := 1; i <= 15; i++ {
			ms = append(ms, event("r", run*15+i))
			if run == 1 && i == 7 {
				ms = append(ms, event("other", 0)) // splits the run
			}
		}
		require.NoError(t, b.PublishTogether(ms, opts))
	}
	// Runs 1-15, 16-22, 23-30 and 31-45: those wholly before the newest
	// 20 events are trimmed.
	assert.EqualValues(t, 2, srv.Do("XLEN", b.KeyEvents("r")), "one entry a run")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 45 }, 10*time.Second, time.Millisecond)
	for i, m := range got {
		require.Equal(t, uint64(i+1), m.Offset, "every event in order, with its offset")
		require.Equal(t, fmt.Sprintf(`{"type":"n","data":%d,"offset":%d}`, i+1, i+1), string(m.Payload))
	}

	latest, now, err := b.Latest(t.Context(), "r", 50, opts)
	require.NoError(t, err)
	assert.Equal(t, uint64(45), now.Offset)
	require.Len(t, latest, 20, "the newest Size events, from within a run")
	assert.Equal(t, `{"type":"n","data":26,"offset":26}`, string(latest[0]))
	assert.Equal(t, `{"type":"n","data":45,"offset":45}`, string(latest[19]))
	for _, n := range []int{0, -1} {
		latest, _, err = b.Latest(t.Context(), "r", n, opts)
		require.NoError(t, err)
		assert.Empty(t, latest, "Latest(%d)", n)
	}
	for since, want := range map[uint64]int{25: 20, 40: 5, 30: 15, 45: 0} {
		events, _, ok, err := b.Since(t.Context(), "r", hub.Position{Epoch: now.Epoch, Offset: since}, opts)
		require.NoError(t, err)
		assert.True(t, ok, "since %d", since)
		require.Len(t, events, want, "since %d", since)
		if want > 0 {
			assert.Equal(t, fmt.Sprintf(`{"type":"n","data":%d,"offset":%d}`, since+1, since+1), string(events[0]))
		}
	}

	// A stream ahead of its meta (a script that failed after its XADD)
	// is dropped rather than stop the room, and the offsets given again
	// come with a new epoch: a client that saw 45 learns of the gap.
	seen := now
	meta := srv.Do("GET", b.KeyMeta("r")).(string)
	srv.Do("SET", b.KeyMeta("r"), strings.Replace(meta, " 45", " 10", 1), "PX", "60000")
	for i := 11; i <= 15; i++ {
		require.NoError(t, b.PublishHistory(t.Context(), event("r", i), opts))
	}
	_, now, err = b.Latest(t.Context(), "r", 1, opts)
	require.NoError(t, err)
	assert.Equal(t, uint64(15), now.Offset)
	assert.NotEqual(t, seen.Epoch, now.Epoch)
	_, _, ok, err := b.Since(t.Context(), "r", seen, opts)
	require.NoError(t, err)
	assert.False(t, ok, "the reader is told")

	// A room that keeps a few events keeps no more, however many were
	// published together.
	var ms []hub.Message
	for i := range 256 {
		ms = append(ms, event("small", i))
	}
	require.NoError(t, b.PublishTogether(ms, hub.HistoryOptions{Size: 2}))
	for _, e := range srv.Do("XRANGE", b.KeyEvents("small"), "-", "+").([]any) {
		events, err := redis.RunPayloads(e.([]any)[1].([]any)[5].(string))
		require.NoError(t, err)
		assert.LessOrEqual(t, len(events), 2, "a run of a history holds no more than its size")
	}
	assert.LessOrEqual(t, srv.Do("XLEN", b.KeyEvents("small")).(int64), int64(2))
	err = b.PublishHistory(t.Context(), hub.Message{Kind: hub.TargetRoom, Room: "r", Payload: []byte("[1]")}, opts)
	assert.ErrorContains(t, err, "not an encoded event", "a payload a node could not add an offset to")
}

// Events older than the TTL are not served, though newer ones keep the
// room's history alive.
func TestHistoryServesNothingPastItsTTL(t *testing.T) {
	srv := single(t).srv
	b := startBroker(t, srv, func(hub.Message) {})
	opts := hub.HistoryOptions{Size: 100, TTL: 300 * time.Millisecond}
	publish := func() {
		require.NoError(t, b.PublishHistory(t.Context(), hub.Message{Kind: hub.TargetRoom, Room: "r", Payload: []byte(`{"type":"n"}`)}, opts))
	}
	publish()
	_, first, err := b.Latest(t.Context(), "r", 1, opts)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		publish() // keeps the meta alive
		latest, now, err := b.Latest(t.Context(), "r", 100, opts)
		require.NoError(t, err)
		require.Equal(t, first.Epoch, now.Epoch, "the history lives on")
		return !strings.Contains(string(latest[0]), `"offset":1}`)
	}, 10*time.Second, 50*time.Millisecond, "the first event goes")
	_, _, ok, err := b.Since(t.Context(), "r", first, opts)
	require.NoError(t, err)
	assert.False(t, ok, "recovering past it is refused")
}

// startBroker starts a broker on srv that hands what it receives to
// deliver, and closes it when the test ends.
func startBroker(t *testing.T, srv *redistest.Server, deliver func(hub.Message)) *redis.Broker {
	b, err := redis.New(redis.Options{URL: srv.URL()})
	require.NoError(t, err)
	require.NoError(t, b.Start(deliver, func(error) {}))
	t.Cleanup(func() { _ = b.Close() })
	return b
}
