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
