package redis_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/internal/redistest"
)

func TestHistoryAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, srv, redis.Options{}, hub.Options{})
	b := newNode(t, srv, redis.Options{}, hub.Options{})
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
	ack := c2.Request("join", "j", "h/lobby", map[string]any{"since": hub.Position{Epoch: first.Epoch, Offset: 1}})
	_ = ack
	var got []uint64
	c2.Send(`{"type":"ping","id":"end"}`)
	for {
		f := c2.Read()
		if f.ID == "end" {
			break
		}
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

	t.Run("a Redis restart loses the history: a new epoch, no recovery", func(t *testing.T) {
		srv.Restart()
		require.Eventually(t, func() bool { return a.h.Health(t.Context()) == nil }, 10*time.Second, 20*time.Millisecond)
		again := a.dial(t, "z").Join("h/lobby2", nil)
		_ = again
		c3 := b.dial(t, "alice")
		res := c3.Join("h/lobby", &hub.Position{Epoch: first.Epoch, Offset: 6})
		assert.False(t, res.Recovered, "the client learns of the gap")
		assert.NotEqual(t, first.Epoch, res.Epoch)
	})
}

func TestHistoryRejoinUnderConcurrentPublishingAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, srv, redis.Options{}, hub.Options{})
	b := newNode(t, srv, redis.Options{}, hub.Options{})
	epoch := a.dial(t, "w").Join("h/race", nil).Epoch
	var stop atomic.Bool
	var published atomic.Int64
	var wg sync.WaitGroup
	for _, n := range []*node{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if n.h.To("h/race").Emit("n", nil) == nil {
					published.Add(1)
				}
				time.Sleep(500 * time.Microsecond)
			}
		}()
	}
	for round := range 10 {
		since := uint64(published.Load())
		n := []*node{a, b}[round%2]
		c := n.dial(t, "r"+strconv.Itoa(round))
		ack := c.Join("h/race", &hub.Position{Epoch: epoch, Offset: since})
		require.True(t, ack.Recovered)
		want := since + 1
		var seen []uint64
		for want <= ack.Offset+10 {
			f := c.ReadUntil("n")
			seen = append(seen, f.Offset)
			require.Equal(t, want, f.Offset, "round %d: no gap, no repeat (since %d, ack %+v, seen %v)", round, since, ack, seen)
			want++
		}
		c.Conn.Close()
	}
	stop.Store(true)
	wg.Wait()
}
