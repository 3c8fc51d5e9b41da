package reliability_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
)

func TestAbruptAndHalfOpenClientsAreCleanedUp(t *testing.T) {
	var mu sync.Mutex
	hooks := map[string]int{}
	// A heartbeat time-out of a second: the half-open client must answer
	// pings until it joined, which a busy machine may take a while to do.
	a := newApp(t, hub.Options{
		PingInterval: 50 * time.Millisecond, HeartbeatTimeout: time.Second,
		OnDisconnect: func(s *hub.Session) { mu.Lock(); hooks[s.ID()]++; mu.Unlock() },
	}, middleware.Options{})
	reset := wstest.Dial(t, a.URL, user(t, "reset"))
	halfOpen := wstest.Dial(t, a.URL, user(t, "half-open"))
	for _, c := range []*wstest.Client{reset, halfOpen} {
		c.Request("join", "j", "lobby", nil)
	}
	reset.Reset()
	// The half-open client neither reads nor answers pings from now on.
	require.Eventually(t, func() bool { return a.Hub.Len() == 0 && a.Hub.Rooms() == 0 }, 30*time.Second, 5*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{reset.SessionID(): 1, halfOpen.SessionID(): 1}, hooks)
	observe("faults", "abrupt TCP reset (SO_LINGER 0)", "session removed from rooms and indexes; disconnect hook ran once")
	observe("faults", "half-open client (stops reading and answering pings)", "closed after the heartbeat time-out; removed from rooms; disconnect hook ran once")
}

func TestSlowConsumerWhileTheRoomFlows(t *testing.T) {
	a := newApp(t, hub.Options{SendQueueFrames: 64}, middleware.Options{})
	slow := wstest.Dial(t, a.URL, user(t, "slow"))
	fast := wstest.Dial(t, a.URL, user(t, "fast"))
	slow.Request("join", "j", "room", nil)
	fast.Request("join", "j", "room", nil)
	payload := make([]byte, 16<<10)
	for i := range payload {
		payload[i] = 'x'
	}
	const total = 800
	got := 0
	for i := range total {
		require.NoError(t, a.Hub.To("room").Emit("bulk", string(payload)))
		if i%4 == 3 { // the fast member keeps up
			for got < i-8 {
				got++
				fast.ReadUntil("bulk")
			}
		}
	}
	for got < total {
		got++
		fast.ReadUntil("bulk")
	}
	assert.Equal(t, 1013, slow.ExpectClose())
	observe("faults", "slow consumer (stops reading during a burst)", "closed with 1013 after the frames it had; the other member received all 800 events")
}

func TestHandlerBlockingPastTheHeartbeat(t *testing.T) {
	// The client answers pings as it reads; a heartbeat time-out of a
	// second leaves a busy machine's reader time to (with 200 ms, one that
	// waited its turn for longer was closed). The handler blocks for 2.5 of
	// them: what is tested is time passing.
	a := newApp(t, hub.Options{PingInterval: 100 * time.Millisecond, HeartbeatTimeout: time.Second}, middleware.Options{})
	c := wstest.Dial(t, a.URL, user(t, "alice"))
	// Read in the background so pings are answered while the handler blocks.
	replies := c.Background("ack", "error")
	c.Send(`{"type":"block","id":"b","data":{"ms":2500}}`)
	f, ok := replies.Next(30 * time.Second)
	require.True(t, ok, "no ack")
	assert.Equal(t, "b", f.ID)
	assert.Equal(t, "ack", f.Type)
	observe("faults", "handler blocking 2.5× the heartbeat time-out", "connection kept alive (reads go on); the ack arrives")
}

func TestBroadcastRacingDisconnect(t *testing.T) {
	a := newApp(t, hub.Options{MaxSessionsPerUser: -1}, middleware.Options{})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				_ = a.Hub.To("room").Emit("tick", 1)
				_ = a.Hub.All().Emit("tock", 2)
			}
		}()
	}
	hdr := user(t, "u")
	for i := range 300 {
		conn, _, err := websocket.DefaultDialer.Dial(a.URL, hdr)
		require.NoError(t, err)
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"room"}`))
		if i%2 == 0 {
			_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		}
		conn.Close()
	}
	stop.Store(true)
	wg.Wait()
	require.Eventually(t, func() bool { return a.Hub.Len() == 0 && a.Hub.Rooms() == 0 }, 10*time.Second, 5*time.Millisecond)
	observe("faults", "broadcast racing 300 connects and disconnects (under -race)", "no race reported, no panic; zero sessions and rooms left")
}
