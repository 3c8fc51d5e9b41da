package redis_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
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

// Messages published while a round trip is in flight go together in the
// next one. A batch that mixes rooms with and without history and a user,
// from many publishers at once, keeps every history's offsets gap-free and
// every publisher's order, and reaches the other node whole.
func TestBatchedPublishing(t *testing.T) {
	onEachRedis(t, func(t *testing.T, r target) {
		pub := newNode(t, r, redis.Options{PublishTimeout: 30 * time.Second}, hub.Options{})
		sub := newNode(t, r, redis.Options{}, hub.Options{})
		// Names in one partition, so that their messages share a lane.
		want := partition(pub.b.ChannelRoom("h/a"))
		find := func(prefix string, channel func(string) string) string {
			for i := 0; ; i++ {
				if name := prefix + strconv.Itoa(i); partition(channel(name)) == want {
					return name
				}
			}
		}
		user := find("bob", pub.b.ChannelUser)
		rooms := []string{"h/a", find("h/b", pub.b.ChannelRoom), find("plain", pub.b.ChannelRoom)}
		targets := []hub.Target{pub.h.ToUser(user)}
		c := sub.dial(t, user)
		for _, room := range rooms {
			targets = append(targets, pub.h.To(room))
			c.Join(room, nil)
		}
		events := c.Background("n")

		// Redis holds the first round trip while the other publishers queue.
		redisOf := r.srv
		if r.cluster != nil {
			redisOf = r.cluster.MasterOf(pub.b.ChannelRoom("h/a"))
		}
		redisOf.Do("CLIENT", "PAUSE", "30000", "WRITE")
		const publishers, rounds = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, publishers*rounds*len(targets))
		for g := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds * len(targets) {
					errs <- targets[(g+i)%len(targets)].Emit("n", []int{g, i})
				}
			}()
		}
		require.Eventually(t, func() bool { return pub.b.Pending() == publishers }, 10*time.Second, time.Millisecond)
		redisOf.Do("CLIENT", "UNPAUSE")
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		offsets := map[string]uint64{}
		last := map[[2]string]int{}
		for range publishers * rounds * len(targets) {
			f, ok := events.Next(10 * time.Second)
			require.True(t, ok, "every message arrives")
			var gi [2]int
			require.NoError(t, json.Unmarshal(f.Data, &gi))
			key := [2]string{f.Room, strconv.Itoa(gi[0])}
			if prev, seen := last[key]; seen {
				assert.Greater(t, gi[1], prev, "publisher %d's order in %q", gi[0], f.Room)
			}
			last[key] = gi[1]
			if strings.HasPrefix(f.Room, "h/") {
				assert.Equal(t, offsets[f.Room]+1, f.Offset, "offsets in %q are gap-free", f.Room)
				offsets[f.Room] = f.Offset
			}
		}
		assert.Len(t, last, publishers*len(targets), "every publisher reached every target")
	})
}

// partition returns the hash tag of a key or channel.
func partition(channel string) string {
	return channel[strings.Index(channel, "{"):strings.Index(channel, "}")]
}

// On a cluster one round trip carries the messages of every partition a
// master serves, as a pipeline of script calls. A master that has not seen
// the script (a promoted replica) gets them all, and they keep their order.
func TestOneRoundTripCarriesAMastersPartitions(t *testing.T) {
	cl := redistest.StartCluster(t)
	r := target{opts: redis.Options{Addrs: cl.Addrs()}, cluster: cl}
	pub := newNode(t, r, redis.Options{}, hub.Options{})
	sub := newNode(t, r, redis.Options{}, hub.Options{})
	master := cl.MasterOf(pub.b.ChannelRoom("a"))
	rooms := []string{"a"}
	for i := 0; len(rooms) < 3; i++ {
		name := "b" + strconv.Itoa(i)
		ch := pub.b.ChannelRoom(name)
		if cl.MasterOf(ch) == master && !slices.ContainsFunc(rooms, func(r string) bool { return partition(pub.b.ChannelRoom(r)) == partition(ch) }) {
			rooms = append(rooms, name)
		}
	}
	c := sub.dial(t, "bob")
	for _, room := range rooms {
		c.Join(room, nil)
	}
	events := c.Background("n")
	master.Do("SCRIPT", "FLUSH")
	var ms []hub.Message
	for i := range 6 {
		room := rooms[i%len(rooms)]
		ms = append(ms, hub.Message{Kind: hub.TargetRoom, Room: room, Payload: []byte(`{"type":"n","room":"` + room + `","data":` + strconv.Itoa(i) + `}`)})
	}
	require.NoError(t, pub.b.PublishTogether(ms, hub.HistoryOptions{}))
	last := map[string]int{}
	for range ms {
		f, ok := events.Next(10 * time.Second)
		require.True(t, ok, "every message arrives")
		i, err := strconv.Atoi(string(f.Data))
		require.NoError(t, err)
		if prev, seen := last[f.Room]; seen {
			assert.Greater(t, i, prev, "order in %q", f.Room)
		}
		last[f.Room] = i
	}
	assert.Len(t, last, len(rooms))
}

// A message whose publisher gave up while it waited for its round trip
// is never sent afterwards: after an outage, a backlog of messages whose
// callers were told they failed does not arrive late (or twice, retried).
func TestAMessageGivenUpIsNotSentLater(t *testing.T) {
	r := single(t)
	sub := newNode(t, r, redis.Options{}, hub.Options{})
	c := sub.dial(t, "bob")
	c.Join("lobby", nil)
	events := c.Background("n")
	pub, err := redis.New(redis.Options{URL: r.srv.URL(), Prefix: "test:", PublishTimeout: 2 * time.Second, Logger: wstest.Quiet})
	require.NoError(t, err)
	require.NoError(t, pub.Start(func(hub.Message) {}, func(error) {}))
	t.Cleanup(func() { _ = pub.Close() })
	publish := func(ctx context.Context, data string) error {
		return pub.Publish(ctx, hub.Message{Kind: hub.TargetRoom, Room: "lobby", Payload: []byte(`{"type":"n","room":"lobby","data":"` + data + `"}`)})
	}

	r.srv.Do("CLIENT", "PAUSE", "60000", "WRITE")
	held := make(chan error, 1)
	go func() { held <- publish(t.Context(), "held") }()
	require.Eventually(t, func() bool { return pub.Sending() == 1 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, publish(ctx, "given up"), context.DeadlineExceeded)
	require.Error(t, <-held, "Redis is held past PublishTimeout")
	r.srv.Do("CLIENT", "UNPAUSE")
	require.NoError(t, publish(t.Context(), "after"))
	for {
		f, ok := events.Next(10 * time.Second)
		require.True(t, ok)
		if string(f.Data) == `"after"` {
			break
		}
		// Redis may run what it had read before the time-out.
		assert.Equal(t, `"held"`, string(f.Data), "a message given up before it was sent")
	}
}

// With AsyncPublish a publisher that emits one event after another does not
// wait for Redis: its events queue while Redis is held, then go in batches,
// every one delivered on the other node in order with gap-free offsets.
func TestAsyncPublishing(t *testing.T) {
	onEachRedis(t, func(t *testing.T, r target) {
		pub := newNode(t, r, redis.Options{AsyncPublish: true, PublishTimeout: 30 * time.Second}, hub.Options{})
		sub := newNode(t, r, redis.Options{}, hub.Options{})
		c := sub.dial(t, "bob")
		c.Join("h/feed", nil)
		events := c.Background("n")
		redisOf := r.srv
		if r.cluster != nil {
			redisOf = r.cluster.MasterOf(pub.b.ChannelRoom("h/feed"))
		}
		calls := func(cmds ...string) int {
			stats := redisOf.Do("INFO", "commandstats").(string)
			n := 0
			for _, cmd := range cmds {
				if _, rest, ok := strings.Cut(stats, "cmdstat_"+cmd+":calls="); ok {
					v, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
					n += v
				}
			}
			return n
		}
		scripts, publishes := []string{"evalsha", "eval"}, []string{"publish", "spublish"}
		before, published := calls(scripts...), calls(publishes...)
		redisOf.Do("CLIENT", "PAUSE", "30000", "WRITE")
		const n = 1000
		for i := range n {
			require.NoError(t, pub.h.To("h/feed").Emit("n", i))
		}
		// Every Emit returned while Redis held the first round trip.
		assert.Equal(t, n, pub.b.Pending())
		redisOf.Do("CLIENT", "UNPAUSE")
		for i := range n {
			f, ok := events.Next(10 * time.Second)
			require.True(t, ok, "event %d arrives", i)
			require.Equal(t, strconv.Itoa(i), string(f.Data), "in order")
			require.Equal(t, uint64(i+1), f.Offset, "gap-free offsets")
		}
		assert.Less(t, calls(scripts...)-before, n/10, "sent in batches")
		assert.Less(t, calls(publishes...)-published, n/10, "delivered in runs")
	})
}

// What AsyncPublish could not publish is reported, all of it, at most
// once a second rather than once per batch.
func TestAsyncPublishingReportsWhatItLost(t *testing.T) {
	r := single(t)
	pub := newNode(t, r, redis.Options{AsyncPublish: true, PublishTimeout: 100 * time.Millisecond}, hub.Options{})
	require.NoError(t, pub.h.To("lobby").Emit("n", 0))
	require.Eventually(t, func() bool { return pub.b.Pending() == 0 }, 10*time.Second, time.Millisecond)
	r.srv.Stop()
	const n = 3000
	start := time.Now()
	for i := range n {
		require.NoError(t, pub.h.To("lobby").Emit("n", i))
	}
	lost, reports := 0, 0
	re := regexp.MustCompile(`(\d+) messages were not published`)
	for lost < n {
		select {
		case err := <-pub.errors:
			if m := re.FindStringSubmatch(err.Error()); m != nil {
				k, _ := strconv.Atoi(m[1])
				lost += k
				reports++
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d lost messages reported", lost, n)
		}
	}
	assert.Equal(t, n, lost, "every lost message is counted once")
	assert.LessOrEqual(t, reports, int(time.Since(start)/time.Second)+1, "at most one report a second")
}
