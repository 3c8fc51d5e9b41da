package reliability_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
)

// rtt measures n request/ack round-trips and returns them sorted.
func rtt(t *testing.T, c *wstest.Client, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		f := c.Request("ping", fmt.Sprint("r", i), "", nil)
		out[i] = time.Since(start)
		require.Equal(t, "pong", f.Type)
		time.Sleep(2 * time.Millisecond)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func TestFloodIsCutOffWhileOthersStayFast(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	victim := wstest.Dial(t, a.URL, user(t, "victim"))
	baseline := rtt(t, victim, 50)

	flooder := wstest.Dial(t, a.URL, user(t, "flooder"))
	// Ten times the default rate (50/s) for up to two seconds, reading the
	// replies on the side.
	replies := flooder.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 1000; i++ {
			select {
			case <-replies.Done():
				return
			case <-tick.C:
			}
			if flooder.Conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
				break
			}
		}
	}()
	loaded := rtt(t, victim, 50)
	wg.Wait()
	closeCode, limited := replies.Wait(wstest.Wait), replies.Errors("rate_limited")

	assert.Equal(t, 4429, closeCode, "the flooder is closed with 4429")
	assert.GreaterOrEqual(t, limited, 1, "before that it was told rate_limited")
	p90 := func(d []time.Duration) time.Duration { return d[len(d)*9/10] }
	bound := 10*p90(baseline) + 20*time.Millisecond
	assert.Less(t, p90(loaded), bound, "the other client's acks stay fast (p90 %v unloaded, %v during the flood)", p90(baseline), p90(loaded))
	observe("abuse", "flood at ten times the rate limit", fmt.Sprintf("`rate_limited` replies, then closed with %d; another client's ack p90 stayed under 10× its unloaded p90 + 20 ms", closeCode))
}

func TestTooManyConnections(t *testing.T) {
	a := newApp(t, hub.Options{MaxSessionsPerUser: 2}, middleware.Options{MaxConnsPerAddr: 3})
	wstest.Dial(t, a.URL, user(t, "alice"))
	wstest.Dial(t, a.URL, user(t, "alice"))
	assert.Equal(t, 429, wstest.DialStatus(a.URL, user(t, "alice")), "third session of one user")
	wstest.Dial(t, a.URL, user(t, "bob"))
	assert.Equal(t, 429, wstest.DialStatus(a.URL, user(t, "carol")), "fourth connection from one address")
	observe("abuse", "too many connections per user (limit 2)", "429 `too_many_connections` before the upgrade")
	full := newApp(t, hub.Options{MaxSessions: 2}, middleware.Options{})
	wstest.Dial(t, full.URL, user(t, "u1"))
	wstest.Dial(t, full.URL, user(t, "u2"))
	refusal := wstest.Refuse(t, full.URL, user(t, "u3"))
	assert.Equal(t, 503, refusal.Status, "a hub at MaxSessions refuses the upgrade")
	assert.Equal(t, "5", refusal.Header.Get("Retry-After"))
	observe("abuse", "more sessions than the hub's MaxSessions (limit 2)", "503 `unavailable` with `Retry-After` before the upgrade")
	observe("abuse", "too many connections per address (limit 3)", "429 `too_many_connections` before the upgrade")
}
