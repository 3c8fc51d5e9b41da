package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/internal/redistest"
	"github.com/ginws/ginws/internal/wstest"
)

func TestMain(m *testing.M) { wstest.Main(m) }

type node struct {
	h      *hub.Hub
	b      *redis.Broker
	url    string
	errors chan error
}

// newNode starts a hub on a Redis broker, served on loopback.
func newNode(t *testing.T, srv *redistest.Server, opts redis.Options, hopts hub.Options) *node {
	t.Helper()
	opts.URL = srv.URL()
	opts.Logger = wstest.Quiet
	if opts.Prefix == "" {
		opts.Prefix = "test:"
	}
	b, err := redis.New(opts)
	require.NoError(t, err)
	n := &node{b: b, errors: make(chan error, 100)}
	hopts.Broker = b
	hopts.Rooms = hub.MatchRooms([]string{"h/*", "*"}, map[string]hub.RoomOptions{
		"h/*": {Presence: true, History: hub.HistoryOptions{Size: 1000}},
		"*":   {Presence: true},
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

func threeNodes(t *testing.T, srv *redistest.Server) []*node {
	return []*node{newNode(t, srv, redis.Options{}, hub.Options{}), newNode(t, srv, redis.Options{}, hub.Options{}), newNode(t, srv, redis.Options{}, hub.Options{})}
}

func TestDeliveryAcrossNodesExactlyOnce(t *testing.T) {
	srv := redistest.Start(t)
	var nodes []wstest.Node
	for _, n := range threeNodes(t, srv) {
		nodes = append(nodes, wstest.Node{Hub: n.h, URL: n.url})
	}
	wstest.DeliveryAcrossNodes(t, nodes)
}

func TestANodeSubscribesToARoomOnlyWhileItHasAMemberThere(t *testing.T) {
	srv := redistest.Start(t)
	nodes := threeNodes(t, srv)
	numsub := func() int64 {
		v := srv.Do("PUBSUB", "NUMSUB", "test:room:lobby").([]any)
		return v[1].(int64)
	}
	nodes[0].dial(t, "alice").Join("lobby", nil)
	b := nodes[1].dial(t, "bob")
	b.Join("lobby", nil)
	nodes[2].dial(t, "carol")
	assert.Equal(t, int64(2), numsub(), "nodes 0 and 1")
	b.Request("leave", "l", "lobby", nil)
	require.Eventually(t, func() bool { return numsub() == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestOrderPerPublisher(t *testing.T) {
	srv := redistest.Start(t)
	nodes := threeNodes(t, srv)[:2]
	sub := nodes[1].dial(t, "bob")
	sub.Request("join", "j", "r", nil)
	const n = 200 // within the subscriber's send queue (256 frames) even in one burst
	for i := range n {
		require.NoError(t, nodes[0].h.To("r").Emit("seq", i))
	}
	for i := range n {
		assert.Equal(t, fmt.Sprint(i), string(sub.ReadUntil("seq").Data))
	}
}

func TestPresenceAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	nodes := threeNodes(t, srv)
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
	srv := redistest.Start(t)
	survivor := newNode(t, srv, redis.Options{PresenceTTL: 600 * time.Millisecond}, hub.Options{})
	doomed := newNode(t, srv, redis.Options{PresenceTTL: 600 * time.Millisecond}, hub.Options{})
	doomed.dial(t, "ghost").Request("join", "j", "lobby", nil)
	members := func() int {
		m, err := survivor.h.Members(context.Background(), "lobby")
		require.NoError(t, err)
		return len(m)
	}
	time.Sleep(time.Second) // past one TTL: the live node refreshed its entry
	require.Equal(t, 1, members(), "refreshed entries stay")
	// The node dies without cleaning up: its broker stops, its hub never
	// removes the member.
	require.NoError(t, doomed.b.Close())
	require.Eventually(t, func() bool { return members() == 0 }, 5*time.Second, 20*time.Millisecond, "the dead node's presence expires")
}

func TestSessionLimitAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	n1 := newNode(t, srv, redis.Options{}, hub.Options{MaxSessionsPerUser: 2})
	n2 := newNode(t, srv, redis.Options{}, hub.Options{MaxSessionsPerUser: 2})
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
	srv := redistest.Start(t)
	n1 := newNode(t, srv, redis.Options{PublishTimeout: 300 * time.Millisecond}, hub.Options{})
	n2 := newNode(t, srv, redis.Options{PublishTimeout: 300 * time.Millisecond}, hub.Options{})
	localC, remoteC := n1.dial(t, "local"), n2.dial(t, "remote")
	localC.Request("join", "j", "r", nil)
	remoteC.Request("join", "j", "r", nil)
	local, remote := localC.Background("n"), remoteC.Background("n")
	i := 0
	// crosses emits a new event on node 1 and reports whether node 2's
	// client got it.
	crosses := func() bool {
		i++
		return n1.h.To("r").Emit("n", i) == nil && got(remote, i, 300*time.Millisecond)
	}
	require.True(t, crosses())

	t.Run("pubsub connection killed", func(t *testing.T) {
		srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
		require.Eventually(t, crosses, 10*time.Second, 10*time.Millisecond, "re-subscribed")
	})

	t.Run("redis down, then restarted", func(t *testing.T) {
		srv.Stop()
		i++
		start := time.Now()
		err := n1.h.To("r").Emit("n", i)
		assert.Error(t, err, "publishing to other nodes fails")
		assert.Less(t, time.Since(start), 2*time.Second, "and fails fast")
		assert.True(t, got(local, i, 5*time.Second), "local delivery goes on")
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
		require.Eventually(t, crosses, 10*time.Second, 10*time.Millisecond, "delivery resumes")
	})
}

func TestConfiguration(t *testing.T) {
	_, err := redis.New(redis.Options{})
	assert.ErrorContains(t, err, "URL or Options.Client is required")
	_, err = redis.New(redis.Options{URL: "http://example.com"})
	assert.Error(t, err)
	b, err := redis.New(redis.Options{URL: "rediss://user:pw@127.0.0.1:1/2"})
	require.NoError(t, err, "TLS URLs are accepted")
	require.NoError(t, b.Close())
}
