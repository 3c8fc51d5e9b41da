package reliability_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

// The attacks of issue 15: a client with a valid token tries to make the
// server hold memory that is not charged to it, or to hurt other members.
// The server runs in this process, so its heap is the test's heap: each
// test measures the growth while the attack holds, against the bound the
// options promise.

const mib = 1 << 20

// heapInUse returns the heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// rawDial connects without reading anything: the welcome and everything
// after it stay in the client's socket. The client's receive buffer is
// small, so the server's writes soon find the connection full.
func rawDial(t *testing.T, a *wstest.Server, id string) *websocket.Conn {
	t.Helper()
	d := wstest.Dialer()
	d.NetDial = func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return c, err
	}
	conn, _, err := d.Dial(a.URL, user(t, id))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestControlFrameFloods(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   int
	}{
		{"Ping flood from a client that does not read", websocket.PingMessage},
		{"unsolicited Pong flood", websocket.PongMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The server keeps reading what the flooder sends after its
			// close frame, and waits for the answer, for as long as a busy
			// machine takes to send the flood: closing sooner would reset
			// the connection under the unread close frame.
			a := newApp(t, hub.Options{WriteTimeout: time.Minute, CloseTimeout: time.Minute}, middleware.Options{})
			conn := rawDial(t, a, "flooder")
			before := heapInUse()
			// 100,000 control frames of the largest payload: answered one
			// for one, the Pongs alone would be 12 MiB.
			payload := []byte(strings.Repeat("p", 125))
			sent := 0
			for ; sent < 100_000; sent++ {
				if conn.WriteControl(tc.op, payload, time.Now().Add(wstest.Wait)) != nil {
					break
				}
			}
			grown := max(heapInUse()-before, 0) // the collector may have freed more than the attack kept
			assert.Less(t, grown, int64(2*mib), "server heap grew by %d bytes for %d control frames", grown, sent)
			assert.Equal(t, int(wire.CloseRateLimited), wstest.CloseCode(conn), "the flood is cut off with 4429")
			observe("abuse", tc.name+" (100,000 frames of 125 bytes)",
				fmt.Sprintf("counted by the rate limit and closed with 4429; Pongs coalesced in the send queue; heap grew %.1f MiB", float64(grown)/mib))
		})
	}
}

func TestPendingFramesAreBoundedInBytes(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	const sessions, frames = 4, 95
	big := strings.Repeat("x", 60<<10)
	before := heapInUse()
	refused := 0
	for i := range sessions {
		c := wstest.Dial(t, a.URL, user(t, fmt.Sprint("hoarder", i)))
		// The first frame blocks the session's handler; the others wait
		// behind it, each 60 KiB.
		c.Send(map[string]any{"type": "block", "id": "b0", "data": map[string]any{"ms": 60_000}})
		for n := 1; n < frames; n++ {
			c.Send(map[string]any{"type": "block", "id": fmt.Sprint("b", n), "data": map[string]any{"ms": 60_000, "pad": big}})
		}
		// The reader answers a plain ping itself: once it has, every
		// frame before it was read and queued or refused.
		c.Send("ping")
		for {
			_, data := c.ReadRaw()
			if string(data) == "pong" {
				break
			}
			refused += strings.Count(string(data), `"rate_limited"`)
		}
	}
	grown := heapInUse() - before
	bound := int64(sessions*hub.DefaultMaxPendingBytes + 2*mib)
	assert.Less(t, grown, bound, "frames waiting for handlers are bounded by MaxPendingBytes per session")
	assert.Greater(t, refused, sessions*(frames-10), "the frames beyond the bound were refused with rate_limited")
	observe("abuse", fmt.Sprintf("%d sessions each queueing %d frames of 60 KiB behind a blocked handler", sessions, frames),
		fmt.Sprintf("frames beyond 256 KiB per session refused with `rate_limited`; heap grew %.1f MiB (%.0f MiB without the byte bound)",
			float64(grown)/mib, float64(sessions*frames*60<<10)/mib))
}

// historyRooms gives every room history, as the example does.
var historyRooms = func(string) hub.RoomOptions {
	return hub.RoomOptions{Presence: true, History: hub.HistoryOptions{Size: 500, TTL: time.Hour}}
}

func TestHistoryOfRoomsNobodyIsInIsBounded(t *testing.T) {
	const budget = 4 * mib
	a := newApp(t, hub.Options{Rooms: historyRooms, HistoryBytes: budget}, middleware.Options{})
	c := wstest.Dial(t, a.URL, user(t, "alice"))
	first := c.Join("fresh-0", nil)
	require.NoError(t, a.Hub.To("fresh-0").Emit("chat.message", "hello"))
	c.ReadUntil("chat.message")
	require.Equal(t, "ack", c.Request("leave", "l", "fresh-0", nil).Type)

	before := heapInUse()
	// 32 MiB of events into 1,000 rooms nobody is in: each room's Size
	// and TTL allow all of it.
	text := strings.Repeat("m", 1000)
	for r := 1; r <= 1000; r++ {
		for range 32 {
			require.NoError(t, a.Hub.To(fmt.Sprint("fresh-", r)).Emit("chat.message", text))
		}
	}
	grown := heapInUse() - before
	assert.Less(t, grown, int64(budget+2*mib), "history stays within HistoryBytes")
	assert.Zero(t, a.Hub.Rooms(), "no room has members")

	// The least recently used room was forgotten: resuming there is
	// refused, never a silent gap.
	ack := c.Join("fresh-0", &hub.Position{Epoch: first.Epoch, Offset: 0})
	assert.False(t, ack.Recovered, "a room evicted for the budget does not claim recovery")
	assert.NotEqual(t, first.Epoch, ack.Epoch, "its history starts a new epoch")
	observe("abuse", "32 MiB of history published into 1,000 rooms nobody is in (HistoryBytes 4 MiB)",
		fmt.Sprintf("heap grew %.1f MiB; least recently used rooms forgotten; resuming in one gets `recovered:false` with a new epoch", float64(grown)/mib))
}

func TestHistoryOfAnEmptyRoomExpires(t *testing.T) {
	const ttl = 300 * time.Millisecond
	rooms := func(string) hub.RoomOptions { return hub.RoomOptions{History: hub.HistoryOptions{Size: 10, TTL: ttl}} }
	a := newApp(t, hub.Options{Rooms: rooms}, middleware.Options{})
	c := wstest.Dial(t, a.URL, user(t, "alice"))
	first := c.Join("quiet", nil)
	made := time.Now()
	require.Equal(t, "ack", c.Request("leave", "l", "quiet", nil).Type)
	// The wait is the TTL itself, the property under test.
	time.Sleep(time.Until(made.Add(2 * ttl)))
	ack := c.Join("quiet", &hub.Position{Epoch: first.Epoch, Offset: 0})
	assert.NotEqual(t, first.Epoch, ack.Epoch, "a room that never had an event forgets its epoch after the TTL")
	assert.False(t, ack.Recovered)
	observe("abuse", "history of a room that never had an event", "forgotten after the TTL like any other (new epoch, `recovered:false`)")
}

func TestRoomsPerSessionAreLimited(t *testing.T) {
	const budget = 2 * mib
	a := newApp(t, hub.Options{Rooms: historyRooms, HistoryBytes: budget, RateLimit: 10_000, RateBurst: 10_000}, middleware.Options{})
	before := heapInUse()
	const sessions, tries = 40, 138
	refused := make([]int, sessions)
	concurrently(t, a, "roomer", sessions, func(i int, c *wstest.Client) {
		for r := range tries {
			c.Send(map[string]any{"type": "join", "id": fmt.Sprint("j", r), "room": fmt.Sprintf("s%d-r%d", i, r)})
		}
		for {
			f := c.Read()
			if f.Type == "error" && wire.Code(f.Error.Code) == wire.CodeTooManyRooms {
				refused[i]++
			}
			if f.ID == fmt.Sprint("j", tries-1) {
				break
			}
		}
		c.Reset()
	})
	for i := range sessions {
		assert.Equal(t, tries-hub.DefaultMaxRooms, refused[i], "joins beyond 128 rooms get too_many_rooms")
	}
	require.Eventually(t, func() bool { return a.Hub.Len() == 0 && a.Hub.Rooms() == 0 }, time.Minute, 10*time.Millisecond)
	grown := heapInUse() - before
	assert.Less(t, grown, int64(budget+2*mib), "after everyone left, what the rooms kept is within HistoryBytes")
	observe("abuse", fmt.Sprintf("%d sessions each joining %d rooms with history, then disconnecting", sessions, tries),
		fmt.Sprintf("joins beyond 128 rooms refused with `too_many_rooms`; %d rooms left, heap %.1f MiB above the start (HistoryBytes 2 MiB)", a.Hub.Rooms(), float64(grown)/mib))
}

// concurrently dials n sessions (users prefix0, prefix1, ...) and runs f
// for each on a goroutine of its own; it returns when every f has.
func concurrently(t *testing.T, a *wstest.Server, prefix string, n int, f func(i int, c *wstest.Client)) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		c := wstest.Dial(t, a.URL, user(t, fmt.Sprint(prefix, i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, c)
		}()
	}
	wg.Wait()
}

// members dials n sessions into room and starts their readers.
func members(t *testing.T, a *wstest.Server, prefix, room string, n int) []*wstest.Reader {
	t.Helper()
	out := make([]*wstest.Reader, n)
	for i := range out {
		c := wstest.Dial(t, a.URL, user(t, fmt.Sprint(prefix, i)))
		c.Join(room, nil)
		out[i] = c.Background()
	}
	return out
}

// closed returns the close codes the readers saw, by code.
func closed(rs []*wstest.Reader) map[int]int {
	codes := map[int]int{}
	for _, r := range rs {
		if c := r.Code(); c != 0 {
			codes[c]++
		}
	}
	return codes
}

func TestPresenceChurnDoesNotFloodARoom(t *testing.T) {
	rooms := func(string) hub.RoomOptions { return hub.RoomOptions{Presence: true} }
	a := newApp(t, hub.Options{Rooms: rooms, RateLimit: 10_000, RateBurst: 10_000}, middleware.Options{})
	hall := members(t, a, "member", "hall", 100)
	const churners, rounds = 16, 60
	start := time.Now()
	concurrently(t, a, "churner", churners, func(_ int, c *wstest.Client) {
		for r := range rounds {
			c.Join("hall", nil)
			require.Equal(t, "ack", c.Request("leave", fmt.Sprint("l", r), "hall", nil).Type)
		}
	})
	elapsed := time.Since(start)
	// A marker after the churn: once every member has it, what the churn
	// sent them has arrived (events of a window still open may follow,
	// which only lowers the count the bound is checked against).
	require.NoError(t, a.Hub.To("hall").Emit("marker", nil))
	waitAll(t, hall, "marker", 1)
	windows := int(elapsed/hub.DefaultPresenceInterval) + 2
	bound := windows * hub.DefaultPresenceBatch
	most := 0
	for _, r := range hall {
		most = max(most, r.Count("presence.join")+r.Count("presence.leave")+r.Count("presence.changed"))
	}
	assert.Empty(t, closed(hall), "no member is closed by the churn")
	assert.LessOrEqual(t, most, bound, "at most %d presence events per window of %v", hub.DefaultPresenceBatch, hub.DefaultPresenceInterval)
	observe("abuse", fmt.Sprintf("%d sessions joining and leaving a %d-member room %d times each", churners, len(hall), rounds),
		fmt.Sprintf("no member closed; a member got at most %d presence events (%d changes) in %v", most, churners*rounds*2, elapsed.Round(time.Millisecond)))
}

// waitAll waits until every reader has n frames of type typ, or one closed.
func waitAll(t *testing.T, rs []*wstest.Reader, typ string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, r := range rs {
			if r.Count(typ) < n && r.Code() == 0 {
				return false
			}
		}
		return true
	}, time.Minute, 5*time.Millisecond, "every member receives %d %s", n, typ)
}

func TestACrowdJoiningAtOnceClosesNobody(t *testing.T) {
	rooms := func(string) hub.RoomOptions { return hub.RoomOptions{Presence: true} }
	a := newApp(t, hub.Options{Rooms: rooms}, middleware.Options{})
	const crowd = 400
	clients := make([]*wstest.Client, crowd)
	for i := range clients {
		clients[i] = wstest.Dial(t, a.URL, user(t, fmt.Sprint("viewer", i)))
	}
	// Everyone joins the webinar at once, then reads.
	for _, c := range clients {
		c.Send(map[string]any{"type": "join", "id": "j", "room": "webinar"})
	}
	rs := make([]*wstest.Reader, crowd)
	for i, c := range clients {
		rs[i] = c.Background()
	}
	waitAll(t, rs, "ack", 1)
	require.NoError(t, a.Hub.To("webinar").Emit("start", nil))
	waitAll(t, rs, "start", 1)
	assert.Empty(t, closed(rs), "no member of the crowd is closed")
	presenceOf := func(r *wstest.Reader) int { return r.Count("presence.join") + r.Count("presence.changed") }
	// Presence arrives at the end of a window: wait until all but one
	// member (maybe the last to join, alone in its window) have some.
	require.Eventually(t, func() bool {
		none := 0
		for _, r := range rs {
			if presenceOf(r) == 0 {
				none++
			}
		}
		return none <= 1
	}, time.Minute, 5*time.Millisecond)
	most := 0
	for _, r := range rs {
		most = max(most, presenceOf(r))
	}
	// One event per join would be n² in all, and close members whose
	// writers fall behind (half of a 1,000-member crowd in one run).
	assert.Less(t, most, crowd/4, "presence of a crowd is coalesced")

	// One member then sends a burst of 320 messages: the rate limit lets
	// some through, and every other member gets each of those.
	sender := wstest.Dial(t, a.URL, user(t, "speaker"))
	sender.Join("webinar", nil)
	for i := range 320 {
		sender.Send(map[string]any{"type": "chat.send", "data": map[string]any{"room": "webinar", "text": fmt.Sprint("m", i)}})
	}
	assert.Equal(t, int(wire.CloseRateLimited), sender.ExpectClose(), "the burst's sender is cut off")
	require.NoError(t, a.Hub.To("webinar").Emit("end", nil))
	waitAll(t, rs, "end", 1)
	assert.Empty(t, closed(rs), "no member is closed by the burst")
	got := rs[0].Count("chat.message")
	assert.Positive(t, got)
	for _, r := range rs {
		assert.Equal(t, got, r.Count("chat.message"), "every member got every message that was sent")
	}
	observe("abuse", fmt.Sprintf("a crowd of %d sessions joining one room with presence at once, then a burst of 320 messages into it", crowd),
		fmt.Sprintf("no member closed; a member got at most %d presence events for %d joins; every member got all %d messages the rate limit let through", most, crowd, got))
}

// sendQueues returns the bytes waiting in the kernel's send queue of each
// TCP socket on this machine whose local port is port (Linux).
func sendQueues(t *testing.T, port int) []int {
	t.Helper()
	var out []int
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue ...
			fields := strings.Fields(sc.Text())
			if len(fields) < 5 {
				continue
			}
			local := fields[1]
			p, err := strconv.ParseInt(local[strings.LastIndexByte(local, ':')+1:], 16, 32)
			if err != nil || int(p) != port || fields[3] != "01" { // established
				continue
			}
			q := fields[4][:strings.IndexByte(fields[4], ':')]
			n, err := strconv.ParseInt(q, 16, 64)
			if err == nil {
				out = append(out, int(n))
			}
		}
		f.Close()
	}
	return out
}

func TestNonReadersNeitherHurtReadersNorParkMemoryInTheKernel(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("needs Linux's /proc/net/tcp")
	}
	a := newApp(t, hub.Options{}, middleware.Options{})
	port := a.HTTP.Listener.Addr().(*net.TCPAddr).Port
	readers := members(t, a, "reader", "feed", 10)
	const idle = 8
	for i := range idle {
		conn, _, err := wstest.Dialer().Dial(a.URL, user(t, fmt.Sprint("idle", i)))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"feed"}`)))
	}
	require.Eventually(t, func() bool {
		ms, err := a.Hub.Members(context.Background(), "feed")
		return err == nil && len(ms) == 10+idle
	}, wstest.Wait, 5*time.Millisecond)

	// 16 MiB for each member, more than a client's kernel takes unread.
	const events = 4000
	text := strings.Repeat("d", 4<<10)
	most := 0
	for i := range events {
		require.NoError(t, a.Hub.To("feed").Emit("tick", text))
		if i%100 == 99 {
			// The feed goes at the pace of the readers: they are
			// never behind by more than 100 events (400 KiB).
			waitAll(t, readers, "tick", i+1)
			for _, q := range sendQueues(t, port) {
				most = max(most, q)
			}
		}
	}
	assert.Empty(t, closed(readers), "no reading member is closed")
	for _, q := range sendQueues(t, port) {
		most = max(most, q)
	}
	assert.LessOrEqual(t, most, 4*hub.DefaultSocketSendBuffer, "the kernel holds at most about twice SocketSendBuffer per connection")
	observe("abuse", fmt.Sprintf("%d members that read nothing beside 10 that read, 16 MiB sent to each", idle),
		fmt.Sprintf("every reader got all %d events, none closed; the largest kernel send queue of a connection was %d KiB (SocketSendBuffer 64 KiB)", events, most>>10))
}

func TestLargeAnswersCostInProportion(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	big := strings.Repeat("h", 256<<10)
	hub.Handle(a.Hub, "history.big", func(*hub.Context, struct{}) (any, error) { return big, nil })
	c := wstest.Dial(t, a.URL, user(t, "reader"))
	const asks = 15
	start := time.Now()
	// Read while asking: the test is about the rate of answers, not the
	// send queue of a client that does not read.
	replies := c.Background()
	for i := range asks {
		c.Send(map[string]any{"type": "history.big", "id": fmt.Sprint("h", i)})
	}
	require.True(t, replies.Until(time.Minute, func() bool {
		return replies.Count("ack")+replies.Errors(wire.CodeRateLimited) >= asks
	}), "every request is answered")
	acks, limited := replies.Count("ack"), replies.Errors(wire.CodeRateLimited)
	// Each answer costs 16 tokens of a bucket of 100 that refills at
	// 50/s; the last one answered may take it into debt.
	tokens := 100 + 50*time.Since(start).Seconds()
	assert.LessOrEqual(t, float64(acks), tokens/16+1, "a 256 KiB answer costs 16 tokens of the output budget")
	assert.Equal(t, asks, acks+limited)
	observe("abuse", fmt.Sprintf("%d small requests in a row, each answered with 256 KiB", asks),
		fmt.Sprintf("%d answered, %d refused with `rate_limited`: an answer costs a token of the output budget per 16 KiB", acks, limited))
}

func TestRejoinWithLongReplaysIsNeverRefused(t *testing.T) {
	a := newApp(t, hub.Options{Rooms: historyRooms}, middleware.Options{})
	c := wstest.Dial(t, a.URL, user(t, "returning"))
	text := strings.Repeat("r", 2000)
	since := map[string]hub.Position{}
	for r := range 5 {
		room := fmt.Sprint("busy-", r)
		since[room] = hub.Position{Epoch: c.Join(room, nil).Epoch}
		for range 500 {
			require.NoError(t, a.Hub.To(room).Emit("chat.message", text))
		}
	}
	c.Reset()
	// Back after a reconnect: 5 MiB of replay, far beyond what the rate
	// limit lets answers cost, yet every room is recovered.
	c = wstest.Dial(t, a.URL, user(t, "returning"))
	for room, pos := range since {
		ack := c.Join(room, &pos)
		assert.True(t, ack.Recovered, room)
		assert.EqualValues(t, 500, ack.Offset)
	}
	observe("abuse", "a client rejoining 5 rooms with 1 MiB of missed events each",
		"every join answered and recovered: replays are charged to the output budget, but joins are never refused for it (they have JoinRate)")
}
