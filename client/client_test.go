package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/client"
	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

func TestMain(m *testing.M) { wstest.Main(m) }

// testServer is a fixture hub (wstest.NewHub) behind the middleware on
// loopback, on an address that it can be started on again after a stop.
// Rooms h/* keep a history.
type testServer struct {
	*wstest.Server
	// sessions holds the newest session of each user.
	sessions sync.Map
}

// tokens are "user" or "user.ms": a principal expiring after ms milliseconds.
var auth = middleware.AuthFunc(func(_ *gin.Context, token string) (hub.Principal, error) {
	user, ms, ok := strings.Cut(token, ".")
	if user == "" {
		return hub.Principal{}, middleware.ErrNoToken
	}
	p := hub.Principal{UserID: user, Roles: []string{"member"}}
	if ok {
		n, _ := strconv.Atoi(ms)
		p.Expires = time.Now().Add(time.Duration(n) * time.Millisecond)
	}
	return p, nil
})

func startServer(t *testing.T, addr string) *testServer {
	t.Helper()
	ts, err := listen(addr)
	require.NoError(t, err)
	t.Cleanup(ts.stop)
	return ts
}

func startExampleServer() *testServer {
	ts, err := listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	return ts
}

func listen(addr string) (*testServer, error) {
	ts := &testServer{}
	h := wstest.NewHub(hub.Options{
		Rooms: hub.MatchRooms([]string{"h/*"}, map[string]hub.RoomOptions{"h/*": {History: hub.HistoryOptions{Size: 100}}}),
		OnConnect: func(s *hub.Session) error {
			if s.Principal().UserID == "banned" {
				return errors.New("banned")
			}
			ts.sessions.Store(s.Principal().UserID, s)
			return nil
		}})
	s, err := wstest.ListenApp(h, wstest.App{Middleware: middleware.Options{Auth: auth}, Addr: addr})
	ts.Server = s
	return ts, err
}

func (ts *testServer) url() string { return ts.URL }

// stop shuts the hub (clients see 1001) and the listener down.
func (ts *testServer) stop() { _ = ts.Close() }

func newClient(t *testing.T, opts client.Options) *client.Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = wstest.Quiet
	}
	c, err := client.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func staticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

func waitState(t *testing.T, c *client.Client, want client.State) {
	t.Helper()
	require.Eventually(t, func() bool { s, _, _ := c.State(); return s == want }, 10*time.Second, 5*time.Millisecond, "state %s", want)
}

func TestRequestEventsAndErrors(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	c := newClient(t, client.Options{URL: ts.url(), Token: staticToken("alice")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	got := make(chan wstest.ChatMessage, 1)
	off := client.On(c, "chat.message", func(ev client.Event, m wstest.ChatMessage) {
		assert.Equal(t, "lobby", ev.Room)
		got <- m
	})
	defer off()
	res, err := c.Join(ctx, "lobby")
	require.NoError(t, err)
	assert.Equal(t, 1, res.Members)

	data, err := c.Request(ctx, "chat.send", wstest.SendChat{Room: "lobby", Text: "hi"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"len":2}`, string(data))
	select {
	case m := <-got:
		assert.Equal(t, wstest.ChatMessage{User: "alice", Text: "hi"}, m)
	case <-ctx.Done():
		t.Fatal("no event")
	}

	_, err = c.Request(ctx, "chat.send", wstest.SendChat{Room: "lobby", Text: strings.Repeat("x", 501)})
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeValidationFailed, e.Code)
	assert.Equal(t, []wire.FieldError{{Field: "text", Rule: "max", Param: "500", Message: "text must be at most 500 characters long"}}, e.Fields)

	_, err = c.Request(ctx, "nope", nil)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeUnknownType, e.Code)
}

func TestReconnectAfterServerRestart(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	var recovered sync.Map
	reasons := make(chan error, 100)
	c := newClient(t, client.Options{URL: ts.url(), Token: staticToken("alice"), BaseDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
		OnRecover: func(room string, ok bool) { recovered.Store(room, ok) },
		OnState: func(s client.State, err error) {
			if s == client.StateReconnecting {
				select {
				case reasons <- err:
				default:
				}
			}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Join(ctx, "lobby")
	require.NoError(t, err)
	first := c.Session()

	ts.stop()
	var ce *client.CloseError
	require.ErrorAs(t, <-reasons, &ce)
	assert.Equal(t, wire.CloseGoingAway, ce.Code, "the server said it was going away")

	// A request made while offline waits in the queue.
	reply := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, "chat.send", wstest.SendChat{Room: "lobby", Text: "queued"})
		reply <- err
	}()
	got := make(chan wstest.ChatMessage, 1)
	client.On(c, "chat.message", func(_ client.Event, m wstest.ChatMessage) { got <- m })

	ts2 := startServer(t, ts.Addr())
	waitState(t, c, client.StateOpen)
	assert.NotEqual(t, first, c.Session())
	require.NoError(t, <-reply)
	select {
	case m := <-got:
		assert.Equal(t, "queued", m.Text, "the client re-joined lobby before sending")
	case <-ctx.Done():
		t.Fatal("no event after reconnect")
	}
	ok, found := recovered.Load("lobby")
	assert.True(t, found)
	assert.Equal(t, false, ok, "a hub without history cannot replay")
	_ = ts2
}

func TestResumeAfterSlowConsumerClose(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	recovered := make(chan bool, 2)
	// A reconnect delay of about 300 ms: two and three are sent while alice is away.
	alice := newClient(t, client.Options{URL: ts.url(), Token: staticToken("alice"), BaseDelay: 300 * time.Millisecond, MaxDelay: 300 * time.Millisecond, Rand: func() float64 { return 0.99 },
		OnRecover: func(_ string, ok bool) { recovered <- ok }})
	bob := newClient(t, client.Options{URL: ts.url(), Token: staticToken("bob")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []uint64
	client.On(alice, "chat.message", func(ev client.Event, _ wstest.ChatMessage) {
		mu.Lock()
		got = append(got, ev.Offset)
		mu.Unlock()
	})
	_, err := alice.Join(ctx, "h/r")
	require.NoError(t, err)
	_, err = bob.Join(ctx, "h/r")
	require.NoError(t, err)
	send := func(text string) {
		_, err := bob.Request(ctx, "chat.send", wstest.SendChat{Room: "h/r", Text: text})
		require.NoError(t, err)
	}
	send("one")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, 5*time.Second, 5*time.Millisecond)

	s, _ := ts.sessions.Load("alice")
	s.(*hub.Session).Close(1013, "slow_consumer")
	require.Eventually(t, func() bool { st, _, _ := alice.State(); return st != client.StateOpen }, 5*time.Second, time.Millisecond)
	send("two")
	send("three")
	select {
	case ok := <-recovered:
		assert.True(t, ok, "the missed events were replayed")
	case <-ctx.Done():
		t.Fatal("no re-join")
	}
	send("four")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 4 }, 5*time.Second, 5*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []uint64{1, 2, 3, 4}, got, "every event once, in order")
}

func TestJoinByTheServerIsKeptAcrossReconnects(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	rejoined := make(chan string, 2)
	alice := newClient(t, client.Options{URL: ts.url(), Token: staticToken("alice"), BaseDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond,
		OnRecover: func(room string, _ bool) { rejoined <- room }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	joined := make(chan string, 1)
	client.On(alice, "room.joined", func(ev client.Event, res client.JoinResult) { joined <- res.Room })
	messages := make(chan string, 4)
	client.On(alice, "chat.message", func(_ client.Event, m wstest.ChatMessage) { messages <- m.Text })
	waitState(t, alice, client.StateOpen)

	require.NoError(t, ts.Hub.JoinUser(ctx, "alice", "h/team"))
	select {
	case room := <-joined:
		assert.Equal(t, "h/team", room)
	case <-ctx.Done():
		t.Fatal("no room.joined")
	}
	s, _ := ts.sessions.Load("alice")
	s.(*hub.Session).Close(1013, "slow_consumer")
	select {
	case room := <-rejoined:
		assert.Equal(t, "h/team", room, "the client joins the room the server joined it to again")
	case <-ctx.Done():
		t.Fatal("no re-join")
	}
	require.NoError(t, ts.Hub.To("h/team").Emit("chat.message", wstest.ChatMessage{User: "bot", Text: "still here"}))
	select {
	case text := <-messages:
		assert.Equal(t, "still here", text)
	case <-ctx.Done():
		t.Fatal("no event after the re-join")
	}
}

func TestOfflineQueueIsBounded(t *testing.T) {
	c := newClient(t, client.Options{URL: "ws://127.0.0.1:1/ws", Token: staticToken("a"), QueueSize: 2, BaseDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := c.Request(ctx, "x", nil); errs <- err }()
	}
	var full, timedOut int
	for range 3 {
		switch err := <-errs; {
		case errors.Is(err, client.ErrQueueFull):
			full++
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	assert.Equal(t, 1, full)
	assert.Equal(t, 2, timedOut)
}

// When the in-band refresh fails (here the token provider does), the
// server closes with 4401 at the expiry and the client reconnects with a
// fresh token.
func TestTokenRefreshAfter4401(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	var calls atomic.Int32
	c := newClient(t, client.Options{URL: ts.url(), BaseDelay: 10 * time.Millisecond, Token: func(context.Context) (string, error) {
		switch calls.Add(1) {
		case 1:
			return "alice.200", nil // expires after 200 ms
		case 2:
			return "", errors.New("the identity provider is down")
		}
		return "alice", nil
	}})
	waitState(t, c, client.StateOpen)
	first := c.Session()
	require.Eventually(t, func() bool { return calls.Load() >= 3 && c.Session() != "" && c.Session() != first }, 10*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Join(ctx, "lobby")
	assert.NoError(t, err, "the fresh token keeps working")
}

func TestTerminalCloseStops(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	c := newClient(t, client.Options{URL: ts.url(), Token: staticToken("banned"), BaseDelay: 10 * time.Millisecond})
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a 4403 must stop the client")
	}
	s, _, err := c.State()
	assert.Equal(t, client.StateClosed, s)
	var ce *client.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, wire.CloseForbidden, ce.Code)
	_, err = c.Request(context.Background(), "x", nil)
	assert.ErrorIs(t, err, client.ErrClosed)
}

// A server that sends a welcome with a short heartbeat, then never answers.
func TestHeartbeatTimeoutReconnects(t *testing.T) {
	var dials atomic.Int32
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		dials.Add(1)
		conns.Add(1)
		defer conns.Done()
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome","data":{"session":"s","user":"u","heartbeat":50}}`))
		// Read (so control frames are processed) but never answer pings.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				break
			}
		}
		conn.Close()
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		conns.Wait()
	}()
	c := newClient(t, client.Options{URL: "ws://" + ln.Addr().String(), Token: staticToken("u"), BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond})
	require.Eventually(t, func() bool { return dials.Load() >= 3 }, 10*time.Second, 5*time.Millisecond, "no pong in 2 heartbeats: reconnect")
	require.NoError(t, c.Close())
}

func TestBackoff(t *testing.T) {
	base, max := 500*time.Millisecond, 30*time.Second
	assert.Equal(t, time.Duration(0), client.Backoff(0, base, max, 0))
	assert.Equal(t, 250*time.Millisecond, client.Backoff(0, base, max, 0.5))
	assert.Equal(t, 1500*time.Millisecond, client.Backoff(2, base, max, 0.75), "base doubles per attempt")
	assert.Equal(t, 15*time.Second, client.Backoff(10, base, max, 0.5), "capped at 30 s")
	assert.Equal(t, 15*time.Second, client.Backoff(100, base, max, 0.5), "no overflow")
}

func TestJSONAccessors(t *testing.T) {
	var e client.Error
	require.NoError(t, json.Unmarshal([]byte(`{"code":"forbidden","message":"no"}`), &e))
	assert.EqualError(t, &e, "forbidden: no")
	assert.True(t, wire.StatusCode(4403).Terminal())
	assert.True(t, wire.StatusCode(1002).Terminal(), "a protocol error is final")
	assert.False(t, wire.StatusCode(4401).Terminal())
}

// A refused upgrade with Retry-After (a node draining, or full) is retried
// no sooner than Retry-After plus jitter, however short the back-off; a
// Retry-After longer than MaxDelay is capped.
func TestRetryAfterIsHonoured(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	for _, c := range []struct {
		retryAfter string
		maxDelay   time.Duration
		want       time.Duration // Retry-After, capped at maxDelay
		gap        time.Duration // and half of it again (Rand is 0.5), at most maxDelay
	}{{"1", 30 * time.Second, time.Second, 1500 * time.Millisecond}, {"3600", 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}} {
		var attempts []time.Time
		var mu sync.Mutex
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			attempts = append(attempts, time.Now())
			first := len(attempts) == 1
			mu.Unlock()
			if first {
				w.Header().Set("Retry-After", c.retryAfter)
				http.Error(w, `{"error":{"code":"unavailable","message":"draining"}}`, http.StatusServiceUnavailable)
				return
			}
			ts.HTTP.Config.Handler.ServeHTTP(w, r)
		}))
		states := make(chan error, 16)
		cl := newClient(t, client.Options{URL: "ws" + strings.TrimPrefix(front.URL, "http") + "/ws", Token: staticToken("alice"),
			BaseDelay: time.Millisecond, MaxDelay: c.maxDelay, Rand: func() float64 { return 0.5 },
			OnState: func(s client.State, err error) {
				if s == client.StateReconnecting {
					states <- err
				}
			}})
		var re *client.RefusedError
		require.ErrorAs(t, <-states, &re)
		assert.Equal(t, http.StatusServiceUnavailable, re.Status)
		waitState(t, cl, client.StateOpen)
		mu.Lock()
		gap := attempts[1].Sub(attempts[0])
		mu.Unlock()
		assert.Equal(t, c.want, re.RetryAfter)
		assert.GreaterOrEqual(t, gap, c.gap, "no attempt before Retry-After and its jitter")
		_ = cl.Close()
		front.Close()
	}
}

// A session whose tokens last 2 s stays up across three lifetimes: told
// token.expiring, the client asks its token provider and refreshes in-band.
func TestTokenRefreshKeepsTheSession(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	var asked atomic.Int32
	reconnects := make(chan error, 16)
	c := newClient(t, client.Options{URL: ts.url(),
		Token: func(context.Context) (string, error) { asked.Add(1); return "alice.2000", nil },
		OnState: func(s client.State, err error) {
			if s == client.StateReconnecting {
				reconnects <- err
			}
		}})
	waitState(t, c, client.StateOpen)
	session := c.Session()
	// The first token, then one refresh per lifetime: the first token's
	// expiry is long past after the third.
	require.Eventually(t, func() bool { return asked.Load() >= 4 }, 30*time.Second, 10*time.Millisecond, "refreshes")
	select {
	case err := <-reconnects:
		t.Fatalf("the session was closed: %v", err)
	default:
	}
	assert.Equal(t, session, c.Session(), "the same session throughout")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var e *client.Error
	_, err := c.Request(ctx, "refresh", map[string]string{"token": "bob.60000"})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeForbidden, e.Code, "a token of another user")
	_, err = c.Request(ctx, "refresh", map[string]string{"token": ".60000"})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeUnauthorized, e.Code, "a token that does not pass")
	_, err = c.Request(ctx, "refresh", nil)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeUnauthorized, e.Code, "no token")
	assert.Equal(t, session, c.Session(), "refusals change nothing")
}

// A request in flight when the connection drops fails with
// ErrConnectionLost, unless it is Repeatable: then it is sent again after
// the reconnect and answered.
func TestRepeatableRequestSurvivesADrop(t *testing.T) {
	h := wstest.NewHub(hub.Options{})
	var calls atomic.Int32
	handling := make(chan struct{}, 4)
	// The first two calls wait for the test to cut the connection under
	// them; the third, the repeated one, is answered.
	hub.Handle(h, "flaky", func(c *hub.Context, _ struct{}) (any, error) {
		if calls.Add(1) <= 2 {
			handling <- struct{}{}
			<-c.Done()
		}
		return "ok", nil
	})
	s := wstest.StartApp(t, h, wstest.App{Middleware: middleware.Options{Auth: auth}})
	p := newCutter(t, s.Addr())
	c := newClient(t, client.Options{URL: "ws://" + p.addr() + "/ws", Token: staticToken("alice"), BaseDelay: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, repeat := range []bool{false, true} {
		var opts []client.RequestOption
		if repeat {
			opts = append(opts, client.Repeatable())
		}
		res := make(chan error, 1)
		go func() {
			_, err := c.Request(ctx, "flaky", nil, opts...)
			res <- err
		}()
		select {
		case <-handling:
		case <-ctx.Done():
			t.Fatalf("repeat %v: the request never reached its handler", repeat)
		}
		p.cut()
		if err := <-res; repeat {
			assert.NoError(t, err, "sent again after the reconnect")
		} else {
			assert.ErrorIs(t, err, client.ErrConnectionLost)
		}
	}
	assert.Equal(t, int32(3), calls.Load(), "the repeatable one twice")
}

// cutter is a TCP proxy on loopback whose connections the test cuts.
type cutter struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	// down counts the bytes from the server to the client.
	down atomic.Int64
}

func newCutter(t *testing.T, backend string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutter{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", backend)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
			wg.Go(func() { n, _ := io.Copy(in, out); p.down.Add(n); _ = in.Close() })
		}
	})
	return p
}

func (p *cutter) addr() string { return p.ln.Addr().String() }

// cut closes every connection made so far.
func (p *cutter) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Binary frames go both ways: SendBinary reaches the hub's binary handler,
// and what the hub sends with EmitBinary reaches OnBinary, bytes intact.
func TestBinaryBothWays(t *testing.T) {
	h := wstest.NewHub(hub.Options{})
	h.HandleBinary(func(c *hub.Context, data []byte) error {
		// Echoed reversed, so that the test sees the server's own frame.
		out := slices.Clone(data)
		slices.Reverse(out)
		return c.Session().EmitBinary(out)
	})
	s := wstest.StartApp(t, h, wstest.App{Middleware: middleware.Options{Auth: auth}})
	c := newClient(t, client.Options{URL: s.URL, Token: staticToken("alice")})
	got := make(chan []byte, 1)
	off := c.OnBinary(func(data []byte) { got <- data })
	defer off()
	waitState(t, c, client.StateOpen)
	payload := []byte{0, 1, 2, 0xff, 'x', 0x80}
	require.NoError(t, c.SendBinary(payload))
	select {
	case data := <-got:
		assert.Equal(t, []byte{0x80, 'x', 0xff, 2, 1, 0}, data)
	case <-time.After(10 * time.Second):
		t.Fatal("no binary frame back")
	}
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.SendBinary(payload), client.ErrNotConnected)
}

// With Compression, a large frame goes compressed both ways through a
// server that enables it; without, nothing is negotiated.
func TestCompression(t *testing.T) {
	h := wstest.NewHub(hub.Options{Compression: hub.Compression{Enabled: true}})
	got := make(chan int, 1)
	h.HandleBinary(func(c *hub.Context, data []byte) error {
		got <- len(data)
		return c.Session().EmitBinary(data)
	})
	s := wstest.StartApp(t, h, wstest.App{Middleware: middleware.Options{Auth: auth}})
	payload := bytes.Repeat([]byte("a dashboard row, "), 3000) // 51 KB
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprint("compression=", compress), func(t *testing.T) {
			u, err := url.Parse(s.URL)
			require.NoError(t, err)
			p := newCutter(t, u.Host)
			c := newClient(t, client.Options{URL: "ws://" + p.addr() + "/ws", Token: staticToken("alice"), Compression: compress})
			back := make(chan []byte, 1)
			defer c.OnBinary(func(data []byte) { back <- data })()
			waitState(t, c, client.StateOpen)
			require.NoError(t, c.SendBinary(payload))
			select {
			case n := <-got:
				assert.Equal(t, len(payload), n, "the server read it whole")
			case <-time.After(10 * time.Second):
				t.Fatal("the server got nothing")
			}
			select {
			case data := <-back:
				assert.Equal(t, payload, data)
			case <-time.After(10 * time.Second):
				t.Fatal("nothing came back")
			}
			require.NoError(t, c.Close())
			p.cut()
			require.Eventually(t, func() bool { return p.down.Load() > 0 }, 10*time.Second, 5*time.Millisecond, "the proxy counted")
			if compress {
				assert.Less(t, p.down.Load(), int64(len(payload)/10), "compressed")
			} else {
				assert.Greater(t, p.down.Load(), int64(len(payload)), "plain")
			}
		})
	}
}
