package hub_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/wire"
)

func TestFrameLimits(t *testing.T) {
	_, url := chatHub(t, hub.Options{MaxFrameBytes: 1024})
	t.Run("exactly max is accepted", func(t *testing.T) {
		c := dial(t, url, "user=a")
		c.Send(wstest.PingOfSize(1024))
		assert.Equal(t, "pong", c.Read().Type)
	})
	t.Run("max+1 closes 1009", func(t *testing.T) {
		c := dial(t, url, "user=a")
		c.Send(wstest.PingOfSize(1025))
		assert.Equal(t, websocket.CloseMessageTooBig, c.ExpectClose())
	})
	t.Run("fragments adding up past max close 1009", func(t *testing.T) {
		c := dial(t, url, "user=a")
		w, err := c.Conn.NextWriter(websocket.TextMessage)
		require.NoError(t, err)
		for range 3 {
			_, _ = w.Write([]byte(strings.Repeat(" ", 400)))
		}
		_ = w.Close()
		assert.Equal(t, websocket.CloseMessageTooBig, c.ExpectClose())
	})
	t.Run("invalid UTF-8 closes 1007", func(t *testing.T) {
		c := dial(t, url, "user=a")
		c.Send("{\"type\":\"ping\",\"data\":\"\xff\xfe\"}")
		assert.Equal(t, websocket.CloseInvalidFramePayloadData, c.ExpectClose())
	})
}

func TestInvalidFramesInARowClose1008(t *testing.T) {
	_, url := chatHub(t, hub.Options{MaxInvalidFrames: 5})
	c := dial(t, url, "user=a")
	for range 4 {
		c.Send("nope")
		assert.Equal(t, "bad_request", c.Read().Error.Code)
	}
	assert.Equal(t, "pong", c.Request("ping", "1", "", nil).Type, "a valid frame resets the count")
	for range 4 {
		c.Send("nope")
		assert.Equal(t, "bad_request", c.Read().Error.Code)
	}
	c.Send("nope")
	assert.Equal(t, websocket.ClosePolicyViolation, c.ExpectClose())
}

func TestRefusalsAreNotInvalidFrames(t *testing.T) {
	_, url := chatHub(t, hub.Options{MaxInvalidFrames: 5})
	c := dial(t, url, "user=a")
	for i := range 10 {
		f := c.Request("leave", fmt.Sprint("l", i), "nowhere", nil)
		assert.Equal(t, "not_member", f.Error.Code)
	}
	assert.Equal(t, "pong", c.Request("ping", "p", "", nil).Type, "ten refusals in a row do not close the session")
}

func TestRateLimit(t *testing.T) {
	_, url := chatHub(t, hub.Options{RateLimit: 5, RateBurst: 5, RateLimitStrikes: 10})
	c := dial(t, url, "user=a")
	for range 30 {
		c.Send(`{"type":"ping"}`)
	}
	r := c.Background()
	assert.Equal(t, 4429, r.Wait(wstest.Wait), "the flood ends with 4429, not a reset")
	assert.Equal(t, 5, r.Count("pong"), "the burst passes")
	assert.Equal(t, 9, r.Errors("rate_limited"), "each frame over the limit is answered until the 10th strike")
}

func TestSlowConsumerClosed1013WhileOthersReceive(t *testing.T) {
	t.Run("the hook uses the hub", func(t *testing.T) {
		slowConsumer(t, func(h *hub.Hub, s *hub.Session, _ <-chan struct{}) {
			// Hooks run outside the hub's locks: they may use the hub.
			s.Close(4403, "kicked")
			_ = h.ToUser("nobody").Emit("note", nil)
		})
	})
	t.Run("the hook blocks until the others have everything", func(t *testing.T) {
		// With a single writer, a hook run by it would stop every write.
		slowConsumer(t, func(_ *hub.Hub, _ *hub.Session, othersDone <-chan struct{}) {
			select {
			case <-othersDone:
			case <-time.After(10 * time.Second):
				t.Error("the hook held up the other member's events")
			}
		})
	})
}

// slowConsumer has a member stop reading while 1,000 events of 16 KiB flow
// to a room (one writer for the hub), and checks that the other member gets
// every event, the slow one 1013, and the error hook, which runs hook, the
// slow consumer.
func slowConsumer(t *testing.T, hook func(h *hub.Hub, s *hub.Session, othersDone <-chan struct{})) {
	var h *hub.Hub
	reported := make(chan struct{}, 1)
	done := make(chan struct{})
	h, url := chatHub(t, hub.Options{Writers: 1, OnError: func(s *hub.Session, err error) {
		if errors.Is(err, hub.ErrSlowConsumer) {
			hook(h, s, done)
			select {
			case reported <- struct{}{}:
			default:
			}
		}
	}})
	fast := dial(t, url, "user=fast")
	slow := dial(t, url, "user=slow")
	fast.Request("join", "1", "room", nil)
	slow.Request("join", "1", "room", nil)
	// The slow client stops reading; paced events fill its socket buffers,
	// then its queue, while the fast member keeps up.
	big := strings.Repeat("x", 16<<10)
	const total = 1000
	received := fast.Background()
	// done closes when the fast member has every event (or its connection
	// ended).
	go func() {
		defer close(done)
		received.Until(time.Minute, func() bool { return received.Count("bulk") == total })
	}()
	for i := range total {
		require.NoError(t, h.To("room").Emit("bulk", big))
		require.True(t, received.Until(wstest.Wait, func() bool { return received.Count("bulk") >= i-8 }), "fast member stopped")
	}
	<-done
	assert.Equal(t, total, received.Count("bulk"), "the fast member got every event")
	// The paused reader, reading again, finds the events it had, then 1013.
	assert.Equal(t, websocket.CloseTryAgainLater, slow.ExpectClose())
	select {
	case <-reported:
	case <-time.After(5 * time.Second):
		t.Fatal("the error hook did not hear of the slow consumer")
	}
	eventually(t, func() bool { return h.UserSessions("slow") == 0 }, "slow consumer removed")
}

func TestSlowHandlerKeepsConnection(t *testing.T) {
	// The client answers pings as it reads; the heartbeat time-out leaves
	// it a second to do so, which a busy machine's reader meets (with 300
	// ms, a reader that waited its turn for longer was closed).
	const heartbeat = time.Second
	h := hub.New(hub.Options{Logger: wstest.Quiet, HeartbeatTimeout: heartbeat, PingInterval: 100 * time.Millisecond})
	release := make(chan struct{})
	hub.Handle(h, "slow", func(c *hub.Context, _ struct{}) (any, error) {
		select {
		case <-release:
		case <-c.Done():
		}
		return "done", nil
	})
	url := serve(t, h)
	c := dial(t, url, "user=a")
	// Reading in the background answers the server's pings.
	replies := c.Background("ack", "pong")
	c.Send(`{"type":"slow","id":"s"}`)
	c.Send(`{"type":"ping","id":"after"}`)
	// What is tested is time passing: the handler holds the session's
	// next frame for more than two heartbeat time-outs, which would close
	// the session if reading (and so the pongs) waited for the handler.
	time.Sleep(2*heartbeat + heartbeat/2)
	close(release)
	f, ok := replies.Next(wstest.Wait)
	require.True(t, ok, "no reply")
	assert.Equal(t, "ack", f.Type)
	assert.Equal(t, "s", f.ID)
	f, ok = replies.Next(wstest.Wait)
	require.True(t, ok, "no second reply")
	assert.Equal(t, "pong", f.Type, "frames of a session are handled in order")
}

func TestHeartbeatTimeout(t *testing.T) {
	h := hub.New(hub.Options{Logger: wstest.Quiet, HeartbeatTimeout: 200 * time.Millisecond, PingInterval: 50 * time.Millisecond})
	url := serve(t, h)
	c := dial(t, url, "user=a")
	_ = c // the client never reads again, so it never answers a ping
	eventually(t, func() bool { return h.Len() == 0 }, "a silent session is closed")
}

func TestTokenExpiryCloses4401(t *testing.T) {
	_, url := chatHub(t, hub.Options{})
	start := time.Now() // the server starts the token's 300 ms after this
	c := dial(t, url, "user=a&ttl=300ms")
	// ExpectClose bounds the wait (generously: a busy machine may be late).
	assert.Equal(t, 4401, c.ExpectClose())
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "closed when the token expired, not before")
}

func TestKickCloses4403(t *testing.T) {
	h, url := chatHub(t, hub.Options{OnConnect: func(s *hub.Session) error {
		if s.Principal().UserID == "banned" {
			return assert.AnError
		}
		return nil
	}})
	d := websocket.Dialer{}
	conn, _, err := d.Dial(url+"?user=banned", nil)
	require.NoError(t, err)
	defer conn.Close()
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, int(wire.CloseForbidden), ce.Code)
	eventually(t, func() bool { return h.Len() == 0 }, "refused session cleaned up")
}

func TestMaxSessionsPerUser(t *testing.T) {
	_, url := chatHub(t, hub.Options{MaxSessionsPerUser: 2})
	dial(t, url, "user=a")
	second := dial(t, url, "user=a")
	require.Equal(t, 429, wstest.DialStatus(url+"?user=a", nil))
	second.Conn.Close()
	eventually(t, func() bool { return wstest.DialStatus(url+"?user=a", nil) == 101 }, "a freed slot can be used again")
}

func TestShutdownDeliversThen1001(t *testing.T) {
	h := hub.New(hub.Options{Logger: wstest.Quiet})
	url := serve(t, h)
	var clients []*wstest.Client
	for range 5 {
		c := dial(t, url, "user=u")
		c.Request("join", "j", "room", nil)
		clients = append(clients, c)
	}
	for i := range 200 {
		require.NoError(t, h.To("room").Emit("n", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var readers []*wstest.Reader
	for _, c := range clients {
		readers = append(readers, c.Background())
	}
	require.NoError(t, h.Shutdown(ctx))
	for _, r := range readers {
		assert.Equal(t, websocket.CloseGoingAway, r.Wait(wstest.Wait))
		assert.Equal(t, 200, r.Count("n"), "every queued event arrives before the close")
	}
	assert.ErrorIs(t, h.Accept(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil), hub.Principal{}, nil), hub.ErrHubClosed)
	assert.NoError(t, h.Shutdown(ctx), "Shutdown is idempotent")
}

func TestShutdownWaitsForHandlers(t *testing.T) {
	h := hub.New(hub.Options{Logger: wstest.Quiet})
	started := make(chan struct{})
	var finished atomic.Bool
	hub.Handle(h, "work", func(c *hub.Context, _ struct{}) (any, error) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		finished.Store(true)
		return "done", nil
	})
	url := serve(t, h)
	c := dial(t, url, "user=a")
	c.Send(`{"type":"work","id":"w"}`)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.Shutdown(ctx))
	assert.True(t, finished.Load())
	f := c.Read()
	assert.Equal(t, "ack", f.Type, "the running handler's ack is written before 1001")
	assert.Equal(t, websocket.CloseGoingAway, c.ExpectClose())
}

func TestShutdownTimesOut(t *testing.T) {
	h := hub.New(hub.Options{Logger: wstest.Quiet})
	block, started := make(chan struct{}), make(chan struct{})
	hub.Handle(h, "stuck", func(c *hub.Context, _ struct{}) (any, error) {
		close(started)
		<-block
		return nil, nil
	})
	url := serve(t, h)
	c := dial(t, url, "user=a")
	c.Send(`{"type":"stuck"}`)
	select {
	case <-started:
	case <-time.After(wstest.Wait):
		t.Fatal("the handler did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, h.Shutdown(ctx), context.DeadlineExceeded)
	close(block)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	assert.NoError(t, h.Shutdown(ctx2))
}

func TestChurn(t *testing.T) {
	h, url := chatHub(t, hub.Options{MaxSessionsPerUser: -1})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				conn, _, err := websocket.DefaultDialer.Dial(url+"?user=u", nil)
				if !assert.NoError(t, err) {
					return
				}
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"r"}`))
				switch (w + i) % 3 {
				case 0:
					_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
					wstest.CloseCode(conn)
				case 1:
					if tcp, ok := conn.UnderlyingConn().(*net.TCPConn); ok {
						_ = tcp.SetLinger(0)
					}
				}
				conn.Close()
			}
		}()
	}
	wg.Wait()
	eventually(t, func() bool { return h.Len() == 0 && h.Rooms() == 0 }, "2,000 sessions come and go, none left")
}

func TestBadHandshakeIsAnsweredAfterTheHandover(t *testing.T) {
	h := hub.New(hub.Options{Logger: wstest.Quiet})
	url := serve(t, h)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
	require.NoError(t, err)
	defer conn.Close()
	// An upgrade without Sec-WebSocket-Key: gorilla refuses it, on the
	// connection the hub already took over.
	_, err = conn.Write([]byte("GET /?user=a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	eventually(t, func() bool { return h.Len() == 0 && h.UserSessions("a") == 0 }, "nothing is left of it")
	// The slot was released: the user can connect.
	dial(t, url, "user=a")
}

// A session closed while its room gets a steady stream of events gets its
// close frame: nothing more is queued ahead of it once it is decided.
func TestACloseIsNotHeldBackByASteadyBroadcast(t *testing.T) {
	h, url := chatHub(t, hub.Options{SendQueueFrames: 1 << 16, SendQueueBytes: 64 << 20})
	c := dial(t, url, "user=a")
	c.Join("busy", nil)
	r := c.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = h.To("busy").Emit("tick", 1)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	require.True(t, r.Until(10*time.Second, func() bool { return r.Count("tick") > 100 }), "the broadcast runs")
	require.NoError(t, h.DisconnectUser(t.Context(), "a", wire.CloseForbidden))
	assert.Equal(t, int(wire.CloseForbidden), r.Wait(10*time.Second))
}

// A kick decided while a handler runs stays a kick when the queue then
// overflows: 1013 would tell the client to come back.
func TestAKickStaysAKickWhenTheQueueOverflows(t *testing.T) {
	h, url := chatHub(t, hub.Options{SendQueueFrames: 256})
	c := dial(t, url, "user=a")
	c.Join("busy", nil)
	c.Send(map[string]any{"type": "block", "id": "b", "data": map[string]any{"ms": 2000}})
	// The reader answers a plain ping itself, after it handed the block
	// request to the handler goroutine.
	require.NoError(t, c.Conn.WriteMessage(websocket.TextMessage, []byte("ping")))
	_, pong := c.ReadRaw()
	require.Equal(t, "pong", string(pong))
	require.NoError(t, h.DisconnectUser(t.Context(), "a", wire.CloseForbidden))
	for i := range 1000 {
		_ = h.To("busy").Emit("tick", i)
	}
	assert.Equal(t, int(wire.CloseForbidden), c.ExpectClose())
}
