package wstest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
)

// Node is one hub of a conformance test, served by Serve at URL. Nodes
// share a broker (hub.Options.Broker), or there is one.
type Node struct {
	Hub *hub.Hub
	URL string
}

// Pace is how fast each node publishes in RejoinRace: it pauses for Pause
// after every Every events, a rate the readers keep up with under -race.
type Pace struct {
	Every int
	Pause time.Duration
}

// RejoinRace is the conformance test of a room history (the hub's own, or
// a broker's) against the race between reading the history and joining the
// live stream. While every node publishes into h/race, a room that must
// keep a history, a client rejoins it 20 times, on each node in turn, since
// the newest offset published: every offset after it must arrive exactly
// once and in order, replayed and then live, until 20 past the join's.
func RejoinRace(t *testing.T, nodes []Node, pace Pace) {
	t.Helper()
	const room, rounds, ahead = "h/race", 20, 20
	epoch := Dial(t, nodes[0].URL+"?user=w", nil).Join(room, nil).Epoch
	var stop atomic.Bool
	var published atomic.Int64
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; !stop.Load(); i++ {
				if n.Hub.To(room).Emit("n", nil) == nil {
					published.Add(1)
				}
				if i%pace.Every == 0 {
					time.Sleep(pace.Pause)
				}
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	for round := range rounds {
		since := uint64(published.Load())
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		c := Dial(t, nodes[round%len(nodes)].URL+"?user=r"+strconv.Itoa(round), nil)
		ack := c.Join(room, &hub.Position{Epoch: epoch, Offset: since})
		require.True(t, ack.Recovered, "round %d", round)
		var seen []uint64
		for want := since + 1; want <= ack.Offset+ahead; want++ {
			f := c.ReadUntil("n")
			seen = append(seen, f.Offset)
			require.Equal(t, want, f.Offset, "round %d: no gap, no repeat (since %d, ack %+v, seen %v)", round, since, ack, seen)
		}
		c.Conn.Close()
	}
}
