package redis_test

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
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
	metaKey := "test:{" + fmt.Sprint(fnv32a("short/quiet")%16) + "}history:short/quiet:meta"
	require.Eventually(t, func() bool { return r.srv.Do("EXISTS", metaKey).(int64) == 0 }, 10*time.Second, 10*time.Millisecond, "the history expired")
	require.NoError(t, pub.h.To("short/quiet").Emit("n", 2))
	f := c.ReadUntil("n")
	assert.Equal(t, uint64(1), f.Offset, "a new history")
	assert.JSONEq(t, "2", string(f.Data))
}

func fnv32a(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

// The stream is trimmed in steps (a quarter of the size at a time), but
// what a client gets never shows it: exactly the last Size events are kept
// for recovery.
func TestHistoryServesItsSizeExactly(t *testing.T) {
	srv := single(t).srv
	b, err := redis.New(redis.Options{URL: srv.URL()})
	require.NoError(t, err)
	require.NoError(t, b.Start(func(hub.Message) {}, func(error) {}))
	t.Cleanup(func() { _ = b.Close() })
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
