package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/wire"
)

// price is the event of the replaceable feed.
type price struct {
	Key string `json:"key"`
	N   int    `json:"n"`
	Pad string `json:"pad"`
}

// slowReader connects with a small receive buffer and reads nothing until
// the test reads: what the server sends backs up into its queue.
func slowReader(t *testing.T, url string) *wstest.Client {
	t.Helper()
	d := wstest.Dialer()
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}
	return wstest.DialWith(t, d, url, nil)
}

// A reader slower than a feed of replaceable events gets the newest value
// of every key, each key's values in order, and stays connected; the same
// feed without Latest overflows its queue (1013).
func TestLatestKeepsASlowReaderWithTheNewestValues(t *testing.T) {
	const keys, updates = 10, 2000 // 20,000 events of 1 KB: 20 times the send queue
	pad := strings.Repeat("x", 1000)
	for _, latest := range []bool{true, false} {
		t.Run(fmt.Sprint("latest=", latest), func(t *testing.T) {
			sessions := make(chan *hub.Session, 1)
			// The reader takes nothing until the feed ends: no write time-out meanwhile.
			h, url := chatHub(t, hub.Options{WriteTimeout: time.Minute, OnConnect: func(s *hub.Session) error { sessions <- s; return nil }})
			c := slowReader(t, url+"?user=slow")
			s := <-sessions
			c.Join("prices", nil)
			for n := range updates {
				for k := range keys {
					to := h.To("prices")
					if latest {
						to = to.Latest(fmt.Sprint("price:", k))
					}
					// An error says the session was closed, which the
					// frames read below tell.
					_ = to.Emit("price", price{fmt.Sprint("price:", k), n, pad})
				}
			}
			if !latest {
				var ce *hub.CloseError
				require.ErrorAs(t, s.Err(), &ce, "without Latest the queue overflows")
				assert.Equal(t, wire.CloseSlowConsumer, ce.Code)
				return
			}
			require.NoError(t, s.Err(), "the slow reader is not closed")
			readFast(c)
			last := map[string]int{}
			frames := 0
			for len(last) < keys || !allAt(last, updates-1) {
				f := c.ReadUntil("price")
				frames++
				var p price
				require.NoError(t, json.Unmarshal(f.Data, &p))
				if prev, ok := last[p.Key]; ok {
					require.Greater(t, p.N, prev, "the values of %s in order", p.Key)
				}
				last[p.Key] = p.N
			}
			assert.Less(t, frames, keys*updates/2, "replaced events were not sent")
			assert.Equal(t, "3", string(c.Request("count", "c", "", map[string]int{"n": 3}).Data), "still connected")
			t.Logf("%d of %d events reached the slow reader", frames, keys*updates)
		})
	}
}

func allAt(last map[string]int, n int) bool {
	for _, v := range last {
		if v != n {
			return false
		}
	}
	return true
}

// A key is the target's own: the same key in two rooms names two values,
// and a session in both gets the newest of each.
func TestLatestKeysBelongToTheirRoom(t *testing.T) {
	h, url := chatHub(t, hub.Options{WriteTimeout: time.Minute})
	c := slowReader(t, url+"?user=slow")
	c.Join("A", nil)
	c.Join("B", nil)
	pad := strings.Repeat("x", 1000)
	// 300 KB ahead of them, more than the kernel's buffers hold: the queue
	// backs up, so replacements happen.
	for n := range 300 {
		require.NoError(t, h.To("A").Emit("filler", price{"filler", n, pad}))
	}
	require.NoError(t, h.To("A").Latest("price").Emit("price", price{"A", 1, ""}))
	require.NoError(t, h.To("B").Latest("price").Emit("price", price{"B", 2, ""}))
	require.NoError(t, h.To("A").Latest("price").Emit("price", price{"A", 3, ""}))
	require.NoError(t, h.To("A").Emit("done", nil))
	readFast(c)
	got := map[string]int{}
	for {
		f := c.Read()
		if f.Type == "done" {
			break
		}
		if f.Type == "price" {
			var p price
			require.NoError(t, json.Unmarshal(f.Data, &p))
			assert.Equal(t, p.Key, f.Room, "the event of its own room")
			got[p.Key] = p.N
		}
	}
	assert.Equal(t, map[string]int{"A": 3, "B": 2}, got)
}

// readFast lets the slow reader's kernel take more at once, now that the
// test reads: a 4 KiB window costs a round trip per 4 KiB.
func readFast(c *wstest.Client) {
	if tc, ok := c.Conn.UnderlyingConn().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(1 << 20)
	}
}
