package reliability_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
)

func TestShutdown(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	var clients []*wstest.Client
	for i := range 4 {
		c := wstest.Dial(t, a.URL, user(t, fmt.Sprint("u", i)))
		c.Request("join", "j", "room", nil)
		clients = append(clients, c)
	}
	for i := range 100 {
		require.NoError(t, a.Hub.To("room").Emit("n", i))
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- a.Hub.Shutdown(ctx)
	}()
	for _, c := range clients {
		for i := range 100 {
			f := c.ReadUntil("n")
			assert.Equal(t, fmt.Sprint(i), string(f.Data))
		}
		assert.Equal(t, 1001, c.ExpectClose())
	}
	require.NoError(t, <-done)
	assert.Equal(t, 503, wstest.Refuse(t, a.URL, user(t, "late")).Status)
	observe("lifecycle", "graceful shutdown with 100 events queued per session", "every event delivered in order, then 1001 to every session")
	observe("lifecycle", "connection attempt during shutdown", "503 `unavailable`")
}

func TestTokenExpiringMidConnection(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	hdr := wstest.Bearer(wstest.Token(t, jwt.MapClaims{"sub": "alice", "exp": exp.Unix()}))
	c := wstest.Dial(t, a.URL, hdr)
	// ExpectClose bounds the wait (generously: a busy machine may be late).
	assert.Equal(t, 4401, c.ExpectClose())
	assert.False(t, time.Now().Before(exp), "closed when the token expired, not before")
	observe("lifecycle", "token expiring mid-connection", "closed with 4401 once `exp` passed, not before")
}

func TestTenThousandCycles(t *testing.T) {
	// Faster than the default admission rate: the cycles are the point.
	a := newApp(t, hub.Options{MaxSessionsPerUser: -1}, middleware.Options{AdmitRate: -1})
	addr := a.Addr()
	hdr := user(t, "churn")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const workers, per = 4, 2500
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			for i := range per {
				switch (w + i) % 3 {
				case 0, 1: // clean close, or reset
					conn, _, err := d.Dial(a.URL, hdr)
					if err != nil {
						errs <- err
						return
					}
					_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"r"}`))
					if (w+i)%3 == 0 {
						_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
					} else if tcp, ok := conn.UnderlyingConn().(*net.TCPConn); ok {
						_ = tcp.SetLinger(0)
					}
					conn.Close()
				case 2: // aborted mid-handshake
					conn, err := net.Dial("tcp", addr)
					if err != nil {
						errs <- err
						return
					}
					_, _ = conn.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"))
					conn.Close()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return a.Hub.Len() == 0 && a.Hub.Rooms() == 0 }, 30*time.Second, 10*time.Millisecond)
	a.HTTP.CloseClientConnections()
	var after runtime.MemStats
	require.Eventually(t, func() bool {
		runtime.GC()
		runtime.ReadMemStats(&after)
		return after.HeapAlloc < before.HeapAlloc+8<<20
	}, 10*time.Second, 50*time.Millisecond, "heap back within 8 MiB of where it started (%d → %d)", before.HeapAlloc, after.HeapAlloc)
	observe("lifecycle", "10,000 connect/disconnect cycles (clean close, reset, aborted mid-handshake)", "zero sessions and rooms left; heap within 8 MiB of the start; goroutines back to baseline (goleak)")
}
