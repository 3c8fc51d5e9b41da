package redis_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/internal/redistest"
	"github.com/ginws/ginws/wire"
)

// A master of the cluster is killed while a room on it is busy: its replica
// takes over, delivery resumes, the outage reaches the error hook once, and
// a client that resumes gets every event it missed or learns that it cannot
// (recovered:false), never a silent gap.
func TestClusterFailover(t *testing.T) {
	cl := redistest.StartCluster(t)
	r := target{opts: redis.Options{Addrs: cl.Addrs()}, cluster: cl}
	pub, sub := newNode(t, r, redis.Options{}, hub.Options{}), newNode(t, r, redis.Options{}, hub.Options{})
	const room = "h/failover"

	c := sub.dial(t, "alice")
	joined := c.Join(room, nil)
	events := c.Background("n")

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			_ = pub.h.To(room).Emit("n", nil) // fails while the slot has no master
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	var last uint64
	require.True(t, events.Until(10*time.Second, func() bool {
		for {
			f, ok := events.Next(0)
			if !ok {
				return last >= 20
			}
			last = f.Offset
		}
	}), "busy before the kill")

	cl.MasterOf(sub.b.ChannelRoom(room)).Stop()

	assert.Equal(t, int(wire.CloseSlowConsumer), events.Wait(30*time.Second),
		"the member learns that it may have missed events once the subscription is back")
	for {
		f, ok := events.Next(0)
		if !ok {
			break
		}
		require.Equal(t, last+1, f.Offset, "no gap before the close")
		last = f.Offset
	}
	lost := 0
	for len(sub.errors) > 0 {
		if err := <-sub.errors; strings.Contains(err.Error(), "subscription lost") {
			lost++
		}
	}
	assert.Equal(t, 1, lost, "the outage reaches the error hook once")

	// The client comes back and resumes.
	c2 := sub.dial(t, "alice")
	ack := c2.Join(room, &hub.Position{Epoch: joined.Epoch, Offset: last})
	after := c2.Background("n")
	if ack.Recovered {
		want := last + 1
		require.True(t, after.Until(10*time.Second, func() bool {
			for {
				f, ok := after.Next(0)
				if !ok {
					return want > ack.Offset+5
				}
				require.Equal(t, want, f.Offset, "every missed event, in order, then live ones")
				want++
			}
		}), "delivery resumes")
	} else {
		assert.NotEqual(t, joined.Epoch, ack.Epoch, "a lost tail gives the history a new epoch")
		_, ok := after.Next(10 * time.Second)
		assert.True(t, ok, "delivery resumes")
	}
	t.Logf("resumed at %d: recovered %v (ack %+v)", last, ack.Recovered, ack)
}
