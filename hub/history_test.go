package hub_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/wire"
)

func historyHub(t *testing.T, opts hub.HistoryOptions) (*hub.Hub, string) {
	t.Helper()
	h := hub.New(hub.Options{Logger: wstest.Quiet, Rooms: hub.MatchRooms([]string{"h/*"}, map[string]hub.RoomOptions{
		"h/*": {History: opts, Presence: true},
	})})
	return h, serve(t, h)
}

func TestHistoryReplaysWhatWasMissed(t *testing.T) {
	h, url := historyHub(t, hub.HistoryOptions{Size: 100})
	c := dial(t, url, "user=a")
	first := c.Join("h/room", nil)
	assert.False(t, first.Recovered, "a join without since does not recover")
	assert.NotEmpty(t, first.Epoch)
	assert.Equal(t, uint64(0), first.Offset)
	for i := 1; i <= 3; i++ {
		require.NoError(t, h.To("h/room").Emit("n", i))
		f := c.ReadUntil("n")
		assert.Equal(t, uint64(i), f.Offset, "offsets are 1, 2, 3, ...")
	}
	c.Conn.Close()
	for i := 4; i <= 10; i++ {
		require.NoError(t, h.To("h/room").Emit("n", i))
	}
	c2 := dial(t, url, "user=a")
	c2.Join("h/room", &hub.Position{Epoch: first.Epoch, Offset: 3})
	// The replay came before the ack.
	var replayed []uint64
	for _, f := range c2.Drain() {
		require.Equal(t, "n", f.Type)
		replayed = append(replayed, f.Offset)
	}
	assert.Equal(t, []uint64{4, 5, 6, 7, 8, 9, 10}, replayed)

	t.Run("ack", func(t *testing.T) {
		c3 := dial(t, url, "user=a")
		a := c3.Join("h/room", &hub.Position{Epoch: first.Epoch, Offset: 10})
		assert.True(t, a.Recovered)
		assert.Equal(t, uint64(10), a.Offset)
		assert.Equal(t, first.Epoch, a.Epoch)
	})
	t.Run("wrong epoch", func(t *testing.T) {
		c3 := dial(t, url, "user=a")
		a := c3.Join("h/room", &hub.Position{Epoch: "other", Offset: 3})
		assert.False(t, a.Recovered)
		assert.Equal(t, uint64(10), a.Offset)
		assert.Equal(t, "pong", c3.Request("ping", "p", "", nil).Type, "nothing was replayed")
	})
	t.Run("ephemeral events carry no offset and are not kept", func(t *testing.T) {
		c3 := dial(t, url, "user=a")
		c3.Join("h/room", nil)
		require.NoError(t, h.To("h/room").Ephemeral().Emit("typing", nil))
		f := c3.ReadUntil("typing")
		assert.Zero(t, f.Offset)
		events, pos, err := h.History(context.Background(), "h/room", 100)
		require.NoError(t, err)
		assert.Len(t, events, 10)
		assert.Equal(t, uint64(10), pos.Offset)
	})
	t.Run("History returns the newest events", func(t *testing.T) {
		events, _, err := h.History(context.Background(), "h/room", 2)
		require.NoError(t, err)
		require.Len(t, events, 2)
		assert.JSONEq(t, `{"type":"n","room":"h/room","data":9,"offset":9}`, string(events[0]))
		assert.JSONEq(t, `{"type":"n","room":"h/room","data":10,"offset":10}`, string(events[1]))
		_, _, err = h.History(context.Background(), "plain", 2)
		assert.ErrorIs(t, err, hub.ErrNoHistory)
		events, pos, err := h.History(context.Background(), "h/room", -1)
		require.NoError(t, err, "a count below zero asks for none")
		assert.Empty(t, events)
		assert.Equal(t, uint64(10), pos.Offset)
	})
}

// TestHistoryTrimmedByCountAndAge has a hub for each bound, so that the
// count is tested with a TTL no slow machine reaches (the default, 10
// minutes): with a short one, events the test expects to be kept could age
// out while it dials and joins.
func TestHistoryTrimmedByCountAndAge(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		h, url := historyHub(t, hub.HistoryOptions{Size: 5})
		c := dial(t, url, "user=a")
		a := c.Join("h/r", nil)
		for i := 1; i <= 8; i++ {
			require.NoError(t, h.To("h/r").Emit("n", i))
		}
		c2 := dial(t, url, "user=a")
		got := c2.Join("h/r", &hub.Position{Epoch: a.Epoch, Offset: 2})
		assert.False(t, got.Recovered, "offset 3 was trimmed (only 4-8 are kept)")
		c3 := dial(t, url, "user=a")
		got = c3.Join("h/r", &hub.Position{Epoch: a.Epoch, Offset: 3})
		assert.True(t, got.Recovered, "4-8 are all there")
		for i := 4; i <= 8; i++ {
			assert.Equal(t, uint64(i), c3.ReadUntil("n").Offset)
		}
	})
	t.Run("age", func(t *testing.T) {
		const ttl = 300 * time.Millisecond
		h, url := historyHub(t, hub.HistoryOptions{Size: 5, TTL: ttl})
		c := dial(t, url, "user=a")
		a := c.Join("h/r", nil)
		for i := 1; i <= 8; i++ {
			require.NoError(t, h.To("h/r").Emit("n", i))
		}
		// What is tested is the clock: the newest event was kept before
		// this sleep began, so after it the event is older than ttl on any
		// machine, however slow.
		time.Sleep(ttl + ttl/3)
		c4 := dial(t, url, "user=a")
		got := c4.Join("h/r", &hub.Position{Epoch: a.Epoch, Offset: 8})
		assert.False(t, got.Recovered, "the history aged out")
		assert.NotEqual(t, a.Epoch, got.Epoch, "a lost history has a new epoch")
		assert.Equal(t, uint64(0), got.Offset)
	})
}

// TestRejoinUnderConcurrentPublishing checks the race between reading the
// history and joining the live stream: every offset arrives exactly once.
func TestRejoinUnderConcurrentPublishing(t *testing.T) {
	h, url := historyHub(t, hub.HistoryOptions{Size: 100000})
	wstest.RejoinRace(t, []wstest.Node{{Hub: h, URL: url}}, wstest.Pace{Every: 8, Pause: time.Millisecond})
}

func TestSlowConsumerRecoversEverything(t *testing.T) {
	h, url := historyHub(t, hub.HistoryOptions{Size: 10000})
	slow := dial(t, url, "user=slow")
	a := slow.Join("h/bulk", nil)
	payload := fmt.Sprintf("%0*d", 8<<10, 0)
	const total = 2000
	for i := 1; i <= total; i++ {
		require.NoError(t, h.To("h/bulk").Emit("n", payload))
	}
	// The slow client reads what it had, then 1013.
	var last uint64
	for {
		f, closed := slow.Next()
		if closed != nil {
			require.Equal(t, int(wire.CloseSlowConsumer), closed.Code)
			break
		}
		if f.Offset > 0 {
			require.Equal(t, last+1, f.Offset)
			last = f.Offset
		}
	}
	require.Less(t, last, uint64(total), "it was cut off before the end")
	again := dial(t, url, "user=slow")
	ack := again.Join("h/bulk", &hub.Position{Epoch: a.Epoch, Offset: last})
	assert.True(t, ack.Recovered)
	for want := last + 1; want <= total; want++ {
		require.Equal(t, want, again.ReadUntil("n").Offset)
	}
}

func TestJoiningTwiceReplaysNothing(t *testing.T) {
	h, url := historyHub(t, hub.HistoryOptions{Size: 10})
	c := dial(t, url, "user=a")
	first := c.Join("h/twice", nil)
	require.NoError(t, h.To("h/twice").Emit("n", 1))
	assert.Equal(t, uint64(1), c.ReadUntil("n").Offset)
	again := c.Join("h/twice", &hub.Position{Epoch: first.Epoch, Offset: 0})
	assert.Equal(t, uint64(1), again.Offset)
	require.NoError(t, h.To("h/twice").Emit("n", 2))
	assert.Equal(t, uint64(2), c.ReadUntil("n").Offset, "offset 1 was not sent a second time")
}

// laggingHistory keeps a room's history and delivers its events only when
// told, as the Redis broker's pub/sub does: an event is in the history
// before it reaches this node's sessions.
type laggingHistory struct {
	mu      sync.Mutex
	deliver func(hub.Message)
	offset  uint64
	events  [][]byte
	held    []hub.Message
}

func (b *laggingHistory) Start(d func(hub.Message), _ func(error)) error { b.deliver = d; return nil }
func (b *laggingHistory) Publish(context.Context, hub.Message) error     { return nil }
func (b *laggingHistory) Subscribe(context.Context, string) error        { return nil }
func (b *laggingHistory) Unsubscribe(context.Context, string) error      { return nil }
func (b *laggingHistory) Close() error                                   { return nil }

func (b *laggingHistory) PublishHistory(_ context.Context, m hub.Message, _ hub.HistoryOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.offset++
	m.Offset, m.Epoch = b.offset, "E"
	m.Payload = append(append(m.Payload[:len(m.Payload)-1:len(m.Payload)-1], fmt.Sprintf(`,"offset":%d`, m.Offset)...), '}')
	b.events = append(b.events, m.Payload)
	b.held = append(b.held, m)
	return nil
}

func (b *laggingHistory) release() {
	b.mu.Lock()
	held := b.held
	b.held = nil
	b.mu.Unlock()
	for _, m := range held {
		b.deliver(m)
	}
}

func (b *laggingHistory) Since(_ context.Context, _ string, since hub.Position, _ hub.HistoryOptions) ([][]byte, hub.Position, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte{}, b.events[since.Offset:]...), hub.Position{Epoch: "E", Offset: b.offset}, true, nil
}

func (b *laggingHistory) Latest(context.Context, string, int, hub.HistoryOptions) ([][]byte, hub.Position, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return nil, hub.Position{Epoch: "E", Offset: b.offset}, nil
}

// Events a resume replayed from the history that are still on their way
// from the broker arrive after it, and are not sent again: not even the
// first events of a history.
func TestReplayedEventsStillOnTheirWayAreNotRepeated(t *testing.T) {
	b := &laggingHistory{}
	h, url := chatHub(t, hub.Options{Broker: b, Rooms: func(string) hub.RoomOptions {
		return hub.RoomOptions{History: hub.HistoryOptions{Size: 100}}
	}})
	c := dial(t, url, "user=a")
	for i := range 3 {
		require.NoError(t, h.To("r").Emit("n", i+1))
	}
	ack := c.Join("r", &hub.Position{Epoch: "E", Offset: 0})
	require.True(t, ack.Recovered)
	b.release()
	var offsets []uint64
	for _, f := range c.Drain() {
		if f.Type == "n" {
			offsets = append(offsets, f.Offset)
		}
	}
	assert.Equal(t, []uint64{1, 2, 3}, offsets, "each event once")
}

// A member that stays while its room's history expires gets the events of
// the history that starts again, whose offsets start at 1.
func TestAMemberGetsTheHistoryThatStartsAgain(t *testing.T) {
	h, url := historyHub(t, hub.HistoryOptions{Size: 10, TTL: 50 * time.Millisecond})
	c := dial(t, url, "user=a")
	first := c.Join("h/quiet", nil)
	require.NoError(t, h.To("h/quiet").Emit("n", 1))
	require.Equal(t, uint64(1), c.ReadUntil("n").Offset)
	eventually(t, func() bool {
		_, pos, err := h.History(t.Context(), "h/quiet", 0)
		return err == nil && pos.Epoch != first.Epoch
	}, "the history expired")
	require.NoError(t, h.To("h/quiet").Emit("n", 2))
	f := c.ReadUntil("n")
	assert.Equal(t, uint64(1), f.Offset, "a new history")
	assert.JSONEq(t, "2", string(f.Data))
}

// A session that ends during its join's replay was never announced as a
// member (OnJoin, presence.join), and its end is not either: the hooks
// come in pairs, which is what keeps an application's own counts right.
func TestAJoinThatNeverFinishedIsNotLeft(t *testing.T) {
	var mu sync.Mutex
	joins, leaves := 0, 0
	h, url := chatHub(t, hub.Options{
		SendQueueBytes: 64 << 10, // a replay past half of it waits for the reader
		Rooms:          func(string) hub.RoomOptions { return hub.RoomOptions{History: hub.HistoryOptions{Size: 500}} },
		OnJoin:         func(*hub.Session, string) { mu.Lock(); joins++; mu.Unlock() },
		OnLeave:        func(*hub.Session, string) { mu.Lock(); leaves++; mu.Unlock() },
	})
	pad := strings.Repeat("x", 1000)
	for n := range 500 {
		require.NoError(t, h.To("h").Emit("filler", price{"f", n, pad}))
	}
	c := slowReader(t, url+"?user=slow")
	c.Send(map[string]any{"type": "join", "id": "j", "room": "h", "data": map[string]any{"since": hub.Position{Epoch: epochOf(t, h, url), Offset: 1}}})
	// The replay (500 KB) backs up: the handler waits in it.
	eventually(t, func() bool { return h.Rooms() == 1 }, "the join began")
	c.Reset()
	eventually(t, func() bool { return h.Len() == 0 && h.Rooms() == 0 }, "the session ended")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, joins, leaves, "OnJoin %d times, OnLeave %d", joins, leaves)
}

// epochOf joins room h with another session to read its history's epoch.
func epochOf(t *testing.T, h *hub.Hub, url string) string {
	t.Helper()
	c := dial(t, url, "user=probe")
	ack := c.Join("h", nil)
	require.True(t, c.Request("leave", "l", "h", nil).Type == "ack")
	_ = c.Conn.Close()
	eventually(t, func() bool { return h.UserSessions("probe") == 0 }, "the probe left")
	return ack.Epoch
}
