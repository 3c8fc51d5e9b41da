package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/internal/redistest"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/wire"
)

func TestMain(m *testing.M) { wstest.Main(m) }

type node struct {
	h      *hub.Hub
	b      *redis.Broker
	url    string
	errors chan error
}

// target is a Redis the tests run on: one server, or a cluster.
type target struct {
	opts    redis.Options // URL or Addrs
	srv     *redistest.Server
	cluster *redistest.Cluster
}

// onEachRedis runs test on a single redis-server and on a Redis Cluster.
func onEachRedis(t *testing.T, test func(t *testing.T, r target)) {
	t.Run("single", func(t *testing.T) { test(t, single(t)) })
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.StartCluster(t)
		test(t, target{opts: redis.Options{Addrs: cl.Addrs()}, cluster: cl})
	})
}

// single is a target of one redis-server.
func single(t *testing.T) target {
	srv := redistest.Start(t)
	return target{opts: redis.Options{URL: srv.URL()}, srv: srv}
}

// subscribers counts the connections subscribed to a room or user channel.
func (r target) subscribers(channel string) int64 {
	if r.cluster != nil {
		return r.cluster.MasterOf(channel).Do("PUBSUB", "SHARDNUMSUB", channel).([]any)[1].(int64)
	}
	return r.srv.Do("PUBSUB", "NUMSUB", channel).([]any)[1].(int64)
}

// newNode starts a hub on a Redis broker, served on loopback.
func newNode(t *testing.T, r target, opts redis.Options, hopts hub.Options) *node {
	t.Helper()
	opts.URL, opts.Addrs = r.opts.URL, r.opts.Addrs
	opts.Logger = wstest.Quiet
	if opts.Prefix == "" {
		opts.Prefix = "test:"
	}
	b, err := redis.New(opts)
	require.NoError(t, err)
	n := &node{b: b, errors: make(chan error, 100)}
	hopts.Broker = b
	hopts.Rooms = hub.MatchRooms([]string{"h/*", "short/*", "*"}, map[string]hub.RoomOptions{
		"h/*":     {Presence: true, History: hub.HistoryOptions{Size: 1000}},
		"short/*": {History: hub.HistoryOptions{Size: 10, TTL: 100 * time.Millisecond}},
		"*":       {Presence: true},
	})
	hopts.OnError = func(_ *hub.Session, err error) {
		select {
		case n.errors <- err:
		default:
		}
	}
	n.h = wstest.NewHub(hopts)
	n.url = wstest.Serve(t, n.h)
	return n
}

func (n *node) dial(t *testing.T, user string) *wstest.Client {
	return wstest.Dial(t, n.url+"?user="+user, nil)
}

func threeNodes(t *testing.T, r target) []*node {
	return []*node{newNode(t, r, redis.Options{}, hub.Options{}), newNode(t, r, redis.Options{}, hub.Options{}), newNode(t, r, redis.Options{}, hub.Options{})}
}

func TestDeliveryAcrossNodesExactlyOnce(t *testing.T) {
	onEachRedis(t, func(t *testing.T, r target) {
		var nodes []wstest.Node
		for _, n := range threeNodes(t, r) {
			nodes = append(nodes, wstest.Node{Hub: n.h, URL: n.url})
		}
		wstest.DeliveryAcrossNodes(t, nodes)
	})
}

func TestANodeSubscribesToARoomOnlyWhileItHasAMemberThere(t *testing.T) {
	onEachRedis(t, func(t *testing.T, r target) {
		nodes := threeNodes(t, r)
		room, alice := nodes[0].b.ChannelRoom("lobby"), nodes[0].b.ChannelUser("alice")
		a := nodes[0].dial(t, "alice")
		a.Join("lobby", nil)
		b := nodes[1].dial(t, "bob")
		b.Join("lobby", nil)
		nodes[2].dial(t, "carol")
		assert.Equal(t, int64(2), r.subscribers(room), "nodes 0 and 1")
		assert.Equal(t, int64(1), r.subscribers(alice), "the node with alice's session hears her channel, no other")
		b.Request("leave", "l", "lobby", nil)
		require.Eventually(t, func() bool { return r.subscribers(room) == 1 }, 5*time.Second, 10*time.Millisecond)
		a.Conn.Close()
		require.Eventually(t, func() bool { return r.subscribers(alice) == 0 }, 5*time.Second, 10*time.Millisecond, "and only while she has one")
	})
}

func TestOrderPerPublisher(t *testing.T) {
	onEachRedis(t, func(t *testing.T, r target) {
		nodes := []*node{newNode(t, r, redis.Options{}, hub.Options{}), newNode(t, r, redis.Options{}, hub.Options{})}
		sub := nodes[1].dial(t, "bob")
		sub.Request("join", "j", "r", nil)
		const n = 200 // within the subscriber's send queue (256 frames) even in one burst
		for i := range n {
			require.NoError(t, nodes[0].h.To("r").Emit("seq", i))
		}
		for i := range n {
			assert.Equal(t, fmt.Sprint(i), string(sub.ReadUntil("seq").Data))
		}
		for i := range n {
			require.NoError(t, nodes[0].h.ToUser("bob").Emit("useq", i))
		}
		for i := range n {
			assert.Equal(t, fmt.Sprint(i), string(sub.ReadUntil("useq").Data), "a user's messages keep their order too")
		}
	})
}

func TestPresenceAcrossNodes(t *testing.T) {
	onEachRedis(t, testPresenceAcrossNodes)
}

func testPresenceAcrossNodes(t *testing.T, r target) {
	nodes := threeNodes(t, r)
	a, b := nodes[0].dial(t, "alice"), nodes[1].dial(t, "bob")
	a.Request("join", "j", "lobby", nil)
	ack := b.Request("join", "j", "lobby", nil)
	var joined struct{ Members int }
	require.NoError(t, json.Unmarshal(ack.Data, &joined))
	assert.Equal(t, 2, joined.Members, "the count spans nodes")

	pj := a.ReadUntil("presence.join")
	assert.JSONEq(t, `{"user":"bob","session":"`+b.SessionID()+`"}`, string(pj.Data), "presence events cross nodes")

	var p struct{ Members []hub.Member }
	require.NoError(t, json.Unmarshal(a.Request("presence", "p", "lobby", nil).Data, &p))
	assert.ElementsMatch(t, []hub.Member{{User: "alice", Session: a.SessionID()}, {User: "bob", Session: b.SessionID()}}, p.Members)

	b.Conn.Close()
	pl := a.ReadUntil("presence.leave")
	assert.Contains(t, string(pl.Data), `"bob"`)
	members, err := nodes[2].h.Members(context.Background(), "lobby")
	require.NoError(t, err)
	assert.Equal(t, []hub.Member{{User: "alice", Session: a.SessionID()}}, members)
}

func TestCrashedNodePresenceExpires(t *testing.T) {
	r := single(t)
	survivor := newNode(t, r, redis.Options{PresenceTTL: 600 * time.Millisecond}, hub.Options{})
	doomed := newNode(t, r, redis.Options{PresenceTTL: 600 * time.Millisecond}, hub.Options{})
	ghost := doomed.dial(t, "ghost")
	ghost.Request("join", "j", "lobby", nil)
	members := func() int {
		m, err := survivor.h.Members(context.Background(), "lobby")
		require.NoError(t, err)
		return len(m)
	}
	expiry := func() int64 {
		score, err := strconv.ParseFloat(fmt.Sprint(r.srv.Do("ZSCORE", doomed.b.KeyPresence("lobby"), ghost.SessionID()+"|ghost")), 64)
		require.NoError(t, err)
		return int64(score)
	}
	first := expiry()
	require.Eventually(t, func() bool { return expiry() > first }, 10*time.Second, 20*time.Millisecond, "the live node refreshes its entry")
	for time.Now().UnixMilli() <= first {
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, 1, members(), "refreshed entries stay past their first expiry")
	// The node dies without cleaning up: its broker stops, its hub never
	// removes the member.
	require.NoError(t, doomed.b.Close())
	require.Eventually(t, func() bool { return members() == 0 }, 5*time.Second, 20*time.Millisecond, "the dead node's presence expires")
}

func TestSessionLimitAcrossNodes(t *testing.T) {
	onEachRedis(t, testSessionLimitAcrossNodes)
}

func testSessionLimitAcrossNodes(t *testing.T, r target) {
	n1 := newNode(t, r, redis.Options{}, hub.Options{MaxSessionsPerUser: 2})
	n2 := newNode(t, r, redis.Options{}, hub.Options{MaxSessionsPerUser: 2})
	n1.dial(t, "alice")
	second := n2.dial(t, "alice")
	require.Equal(t, http.StatusTooManyRequests, wstest.DialStatus(n1.url+"?user=alice", nil), "the third session, on either node, is refused")
	second.Conn.Close()
	require.Eventually(t, func() bool {
		return wstest.DialStatus(n1.url+"?user=alice", nil) == http.StatusSwitchingProtocols
	}, 5*time.Second, 20*time.Millisecond, "a freed slot counts on every node")
}

// got waits up to d for an event n with data want.
func got(r *wstest.Reader, want int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		f, ok := r.Next(time.Until(deadline))
		if !ok {
			return false
		}
		if string(f.Data) == fmt.Sprint(want) {
			return true
		}
	}
}

func TestRedisOutage(t *testing.T) {
	r := single(t)
	srv := r.srv
	n1 := newNode(t, r, redis.Options{PublishTimeout: 300 * time.Millisecond}, hub.Options{})
	n2 := newNode(t, r, redis.Options{PublishTimeout: 300 * time.Millisecond}, hub.Options{})
	// members joins a client to room r on each node.
	members := func() (local, remote *wstest.Reader) {
		l, r := n1.dial(t, "local"), n2.dial(t, "remote")
		l.Join("r", nil)
		r.Join("r", nil)
		return l.Background("n"), r.Background("n")
	}
	// missed asserts that the members were closed with 1013 once the
	// subscription was back: events may have been published meanwhile.
	missed := func(t *testing.T, readers ...*wstest.Reader) {
		t.Helper()
		for _, r := range readers {
			assert.Equal(t, int(wire.CloseSlowConsumer), r.Wait(10*time.Second), "the client learns of the gap and resumes")
		}
	}
	local, remote := members()
	var i atomic.Int64
	// crosses emits a new event on node 1 and reports whether node 2's
	// client got it.
	crosses := func(remote *wstest.Reader) bool {
		n := int(i.Add(1))
		return n1.h.To("r").Emit("n", n) == nil && got(remote, n, 300*time.Millisecond)
	}
	require.True(t, crosses(remote))

	t.Run("pubsub connection killed", func(t *testing.T) {
		srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
		missed(t, local, remote)
		local, remote = members()
		require.True(t, crosses(remote), "subscribed again")
	})

	t.Run("redis down, then restarted", func(t *testing.T) {
		srv.Stop()
		n := int(i.Add(1))
		start := time.Now()
		err := n1.h.To("r").Emit("n", n)
		assert.Error(t, err, "publishing to other nodes fails")
		assert.Less(t, time.Since(start), 2*time.Second, "and fails fast")
		assert.True(t, got(local, n, 5*time.Second), "local delivery goes on")
		require.Eventually(t, func() bool { return n2.h.Health(context.Background()) != nil }, 5*time.Second, 20*time.Millisecond)
		select {
		case err := <-n2.errors:
			assert.ErrorContains(t, err, "redis broker")
		case <-time.After(5 * time.Second):
			t.Fatal("the outage did not reach the error hook")
		}

		srv.Restart()
		require.Eventually(t, func() bool {
			return n1.h.Health(context.Background()) == nil && n2.h.Health(context.Background()) == nil
		}, 10*time.Second, 50*time.Millisecond, "health recovers")
		missed(t, local, remote)
		_, remote = members()
		require.True(t, crosses(remote), "delivery resumes")
	})
}

func TestConfiguration(t *testing.T) {
	_, err := redis.New(redis.Options{})
	assert.ErrorContains(t, err, "Options.URL, Options.Addrs or Options.Client is required")
	_, err = redis.New(redis.Options{URL: "http://example.com"})
	assert.Error(t, err)
	b, err := redis.New(redis.Options{URL: "rediss://user:pw@127.0.0.1:1/2"})
	require.NoError(t, err, "TLS URLs are accepted")
	require.NoError(t, b.Close())
}

// A subscription that failed while Redis was down is made when it is back
// (and the member resumes), and undone when no longer wanted.
func TestASubscriptionThatFailedIsUndone(t *testing.T) {
	r := single(t)
	n := newNode(t, r, redis.Options{PublishTimeout: 300 * time.Millisecond}, hub.Options{})
	c := n.dial(t, "alice")
	r.srv.Stop()
	c.Join("lobby", nil)
	events := c.Background()
	r.srv.Restart()
	assert.Equal(t, int(wire.CloseSlowConsumer), events.Wait(30*time.Second), "what was published meanwhile may be missing")
	require.Eventually(t, func() bool {
		return r.subscribers(n.b.ChannelRoom("lobby")) == 0 && r.subscribers(n.b.ChannelUser("alice")) == 0
	}, 10*time.Second, 20*time.Millisecond, "nothing stays subscribed")
}
