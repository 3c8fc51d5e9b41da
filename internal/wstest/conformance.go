package wstest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
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

// DeliveryAcrossNodes is the conformance test of a broker: on three nodes
// that share it, an event reaches every member of a room, every session of
// a user and every session, whichever node each is on and whichever node
// emits it, exactly once; JoinUser and DisconnectUser reach every session
// of the user. The nodes' hubs have the events of NewHub.
func DeliveryAcrossNodes(t *testing.T, nodes []Node) {
	t.Helper()
	require.Len(t, nodes, 3)
	dial := func(n Node, user string) *Client { return Dial(t, n.URL+"?user="+user, nil) }
	a, b, c := dial(nodes[0], "alice"), dial(nodes[1], "bob"), dial(nodes[2], "carol")
	a2 := dial(nodes[2], "alice") // alice's second tab, on another node
	for _, cl := range []*Client{a, b} {
		cl.Join("lobby", nil)
	}

	t.Run("room", func(t *testing.T) {
		require.Equal(t, "ack", a.Request("chat.send", "1", "", SendChat{Room: "lobby", Text: "across"}).Type)
		for _, cl := range []*Client{a, b} {
			f := cl.ReadUntil("chat.message")
			assert.Equal(t, "lobby", f.Room)
			assert.JSONEq(t, `{"user":"alice","text":"across"}`, string(f.Data))
			noMore(t, cl, "chat.message")
		}
		noMore(t, c, "chat.message") // not a member
	})
	t.Run("user", func(t *testing.T) {
		require.NoError(t, nodes[1].Hub.ToUser("alice").Emit("dm", "hi"))
		for _, cl := range []*Client{a, a2} {
			assert.JSONEq(t, `"hi"`, string(cl.ReadUntil("dm").Data))
			noMore(t, cl, "dm")
		}
		noMore(t, b, "dm")
	})
	t.Run("everyone", func(t *testing.T) {
		require.NoError(t, nodes[2].Hub.All().Emit("news", "x"))
		for _, cl := range []*Client{a, b, c, a2} {
			assert.Equal(t, "news", cl.ReadUntil("news").Type)
			noMore(t, cl, "news")
		}
	})
	t.Run("join a user", func(t *testing.T) {
		require.NoError(t, nodes[1].Hub.JoinUser(t.Context(), "alice", "side"))
		for _, cl := range []*Client{a, a2} {
			assert.Equal(t, "side", cl.ReadUntil("room.joined").Room, "every session of the user, on every node")
		}
		require.NoError(t, nodes[1].Hub.To("side").Emit("n", 1))
		for _, cl := range []*Client{a, a2} {
			assert.Equal(t, "side", cl.ReadUntil("n").Room)
		}
		noMore(t, b, "n")
		noMore(t, b, "room.joined")
	})
	t.Run("disconnect a user", func(t *testing.T) {
		require.NoError(t, nodes[2].Hub.DisconnectUser(t.Context(), "alice", wire.CloseForbidden))
		for _, cl := range []*Client{a, a2} {
			assert.Equal(t, int(wire.CloseForbidden), cl.ExpectClose(), "every session of the user, on every node")
		}
		assert.Equal(t, "pong", b.Request("ping", "p", "", nil).Type, "the others stay")
	})
}

// noMore asserts that no further event of type typ is pending: the one
// before was not delivered twice. (Other events, presence say, may come.)
func noMore(t *testing.T, c *Client, typ string) {
	t.Helper()
	for _, f := range c.Drain() {
		assert.NotEqual(t, typ, f.Type, "a duplicate arrived")
	}
}
