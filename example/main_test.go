package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/client"
	"github.com/ginws/ginws/internal/redistest"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/wire"
)

func TestMain(m *testing.M) { wstest.Main(m) }

// startApp runs the example in-process on a free loopback port and returns
// its address and a function that stops it (SIGTERM's path) and returns
// run's error.
func startApp(t *testing.T, args []string, env map[string]string) (string, func() error) {
	t.Helper()
	return startAppWith(t, args, env, appOptions{})
}

// appOptions are what startAppWith adds to flags and environment.
type appOptions struct {
	out  io.Writer     // receives the log; discarded when nil
	tune func(*config) // changes what no flag sets (time-outs)
}

func startAppWith(t *testing.T, args []string, env map[string]string, o appOptions) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	if !containsFlag(args, "-addr") && env["ADDR"] == "" {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	// Stopped at once unless a test drains: the default drain is 10 s.
	if !containsFlag(args, "-drain") {
		args = append([]string{"-drain", "0s"}, args...)
	}
	if o.out == nil {
		o.out = io.Discard
	}
	go func() {
		cfg, err := parseFlags(args, func(k string) string { return env[k] }, o.out)
		if err == nil {
			if o.tune != nil {
				o.tune(&cfg)
			}
			err = serve(ctx, cfg, o.out, ready)
		}
		done <- err
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("example did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("example did not start")
	}
	// stop may run on a goroutine of the test's and again in Cleanup.
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

func containsFlag(args []string, f string) bool {
	for _, a := range args {
		if a == f {
			return true
		}
	}
	return false
}

func loginToken(t *testing.T, base, user, role string, httpc *http.Client) string {
	t.Helper()
	if httpc == nil {
		httpc = http.DefaultClient
	}
	resp, err := httpc.Post(base+"/api/login", "application/json", strings.NewReader(`{"user":"`+user+`","role":"`+role+`"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct{ Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return body.Token
}

func chatClient(t *testing.T, addr, user, role string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{
		URL:    "ws://" + addr + "/ws",
		Token:  func(context.Context) (string, error) { return loginToken(t, "http://"+addr, user, role, nil), nil },
		Logger: wstest.Quiet,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
	var zero T
	return zero
}

func TestChatEvents(t *testing.T) {
	addr, _ := startApp(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := chatClient(t, addr, "alice", "member")
	bob := chatClient(t, addr, "bob", "member")
	root := chatClient(t, addr, "root", "admin")

	presence := make(chan string, 4)
	client.On(alice, "presence.join", func(_ client.Event, p struct{ User string }) { presence <- "join " + p.User })
	client.On(alice, "presence.leave", func(_ client.Event, p struct{ User string }) { presence <- "leave " + p.User })
	msgs := make(chan ChatMessage, 4)
	client.On(bob, "chat.message", func(ev client.Event, m ChatMessage) {
		assert.Equal(t, "lobby", ev.Room)
		msgs <- m
	})
	own := make(chan ChatMessage, 4)
	client.On(alice, "chat.message", func(_ client.Event, m ChatMessage) { own <- m })
	typing := make(chan string, 4)
	client.On(bob, "typing", func(_ client.Event, ty Typing) { typing <- ty.User })
	client.On(alice, "typing", func(_ client.Event, ty Typing) { typing <- "alice saw " + ty.User })
	announced := make(chan string, 4)
	for _, c := range []*client.Client{alice, root} {
		client.On(c, "announcement", func(_ client.Event, a Announce) { announced <- a.Text })
	}

	_, err := alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: "too early"})
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeNotMember, e.Code)

	_, err = alice.Join(ctx, "lobby")
	require.NoError(t, err)
	res, err := bob.Join(ctx, "lobby")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Members)
	assert.Equal(t, "join bob", waitFor(t, presence))

	_, err = alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: "hello bob"})
	require.NoError(t, err)
	m := waitFor(t, msgs)
	assert.Equal(t, "alice", m.User)
	assert.Equal(t, "hello bob", m.Text)
	at, err := time.Parse(time.RFC3339, m.At)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), at, 5*time.Second)
	assert.Equal(t, "hello bob", waitFor(t, own).Text, "the sender gets its own message")

	_, err = alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: strings.Repeat("x", 501)})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeValidationFailed, e.Code)
	assert.Equal(t, []wire.FieldError{{Field: "text", Rule: "max", Param: "500", Message: "text must be at most 500 characters long"}}, e.Fields)

	_, err = alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: " \t\n "})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeValidationFailed, e.Code)
	assert.Equal(t, []wire.FieldError{{Field: "text", Rule: "notblank", Message: "text must not be blank"}}, e.Fields, "spaces are no message")

	_, err = alice.Request(ctx, "typing", map[string]string{"room": "lobby"})
	require.NoError(t, err)
	assert.Equal(t, "alice", waitFor(t, typing), "typing reaches the others, not the sender")

	_, err = alice.Request(ctx, "admin.announce", Announce{Text: "hi"})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, wire.CodeForbidden, e.Code)
	_, err = root.Request(ctx, "admin.announce", Announce{Text: "maintenance at noon"})
	require.NoError(t, err)
	assert.Equal(t, "maintenance at noon", waitFor(t, announced))
	assert.Equal(t, "maintenance at noon", waitFor(t, announced), "everyone, the sender included")

	require.NoError(t, bob.Close())
	assert.Equal(t, "leave bob", waitFor(t, presence), "a disconnect is a leave")
}

func TestRecentHistoryAndRecovery(t *testing.T) {
	addr, _ := startApp(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := chatClient(t, addr, "alice", "member")
	_, err := alice.Join(ctx, "lobby")
	require.NoError(t, err)
	for _, text := range []string{"one", "two", "three"} {
		_, err := alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: text})
		require.NoError(t, err)
	}
	bob := chatClient(t, addr, "bob", "member")
	_, err = bob.Join(ctx, "lobby")
	require.NoError(t, err)
	raw, err := bob.Request(ctx, "chat.history", map[string]any{"room": "lobby", "limit": 2})
	require.NoError(t, err)
	var hist struct {
		Events []struct {
			Data   ChatMessage
			Offset uint64
		}
		Offset uint64
	}
	require.NoError(t, json.Unmarshal(raw, &hist))
	require.Len(t, hist.Events, 2, "a newly joined user sees the recent chat")
	assert.Equal(t, "two", hist.Events[0].Data.Text)
	assert.Equal(t, uint64(3), hist.Events[1].Offset)
	assert.Equal(t, uint64(3), hist.Offset)
	_, err = bob.Request(ctx, "typing", map[string]string{"room": "lobby"})
	require.NoError(t, err)
	raw, err = bob.Request(ctx, "chat.history", map[string]any{"room": "lobby"})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &hist))
	assert.Len(t, hist.Events, 3, "typing indicators are not kept")
}

func TestHealthLoginAndShutdown(t *testing.T) {
	addr, stop := startApp(t, nil, map[string]string{"JWT_SECRET": "s3cret"})
	base := "http://" + addr
	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))

	resp, err = http.Post(base+"/api/login", "application/json", strings.NewReader(`{"user":"alice","role":"owner"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	resp, err = http.Get(base + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(page), `<script type="module" src="/static/app.js">`)
	resp, err = http.Get(base + "/js/ginws.js")
	require.NoError(t, err)
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	assert.Contains(t, string(js), "export class Client")
	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	prom, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(prom), "ginws_connections_open 0")
	resp, err = http.Get(base + "/asyncapi.json")
	require.NoError(t, err)
	var doc struct {
		AsyncAPI   string         `json:"asyncapi"`
		Operations map[string]any `json:"operations"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	resp.Body.Close()
	assert.Equal(t, "3.0.0", doc.AsyncAPI)
	assert.Contains(t, doc.Operations, "request.chat.send")
	assert.Contains(t, doc.Operations, "event.chat.message")

	states := make(chan error, 8)
	c, err := client.New(client.Options{URL: "ws://" + addr + "/ws", Logger: wstest.Quiet,
		Token: func(context.Context) (string, error) { return loginToken(t, base, "alice", "member", nil), nil },
		OnState: func(s client.State, err error) {
			if s == client.StateReconnecting {
				states <- err
			}
		}})
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return c.Session() != "" }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	var ce *client.CloseError
	require.ErrorAs(t, waitFor(t, states), &ce)
	assert.Equal(t, wire.CloseGoingAway, ce.Code, "shutdown closes sessions with going away")
}

func TestHealthzDuringShutdown(t *testing.T) {
	addr, stop := startAppWith(t, nil, nil, appOptions{tune: func(c *config) { c.closeTimeout = time.Minute }})
	base := "http://" + addr
	// A client that never reads keeps the closing handshake waiting for its
	// close frame (up to the minute of CloseTimeout), so the shutdown lasts
	// until the test closes it.
	tok := loginToken(t, base, "slow", "member", nil)
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", wstest.Bearer(tok))
	require.NoError(t, err)
	defer conn.Close()
	stopped := stopAndWaitForHealthz503(t, base, stop)
	_, _, err = websocket.DefaultDialer.Dial("ws://"+addr+"/ws", wstest.Bearer(tok))
	assert.Error(t, err, "no new sessions during shutdown")
	conn.Close()
	require.NoError(t, waitFor(t, stopped))
}

func TestTwoNodesShareRedis(t *testing.T) {
	t.Run("one Redis", func(t *testing.T) {
		srv := redistest.Start(t)
		twoNodesChat(t, []string{"-redis", srv.URL()}, map[string]string{"REDIS_URL": srv.URL()})
	})
	t.Run("a Redis Cluster", func(t *testing.T) {
		addrs := strings.Join(redistest.StartCluster(t).Addrs(), ",")
		twoNodesChat(t, []string{"-redis-cluster", addrs}, map[string]string{"REDIS_CLUSTER": addrs})
	})
	t.Run("one Redis, publishing without waiting", func(t *testing.T) {
		srv := redistest.Start(t)
		twoNodesChat(t, []string{"-redis", srv.URL(), "-redis-async"}, map[string]string{"REDIS_URL": srv.URL(), "REDIS_ASYNC": "true"})
	})
}

// twoNodesChat starts one example process with args and one with env, and
// has a user on each chat.
func twoNodesChat(t *testing.T, args []string, env map[string]string) {
	addr1, _ := startApp(t, args, nil)
	addr2, _ := startApp(t, nil, env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := chatClient(t, addr1, "alice", "member")
	bob := chatClient(t, addr2, "bob", "member")
	got := make(chan ChatMessage, 1)
	client.On(bob, "chat.message", func(_ client.Event, m ChatMessage) { got <- m })
	_, err := alice.Join(ctx, "lobby")
	require.NoError(t, err)
	res, err := bob.Join(ctx, "lobby")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Members, "presence spans both processes")
	_, err = alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: "from node 1"})
	require.NoError(t, err)
	assert.Equal(t, "from node 1", waitFor(t, got).Text)
}

// Two example processes on a Redis Cluster keep chatting after the master
// that serves the room is killed: the members resume, and the chat goes on.
func TestTwoNodesOnAClusterSurviveAFailover(t *testing.T) {
	cl := redistest.StartCluster(t)
	addrs := strings.Join(cl.Addrs(), ",")
	addr1, _ := startApp(t, []string{"-redis-cluster", addrs}, nil)
	addr2, _ := startApp(t, []string{"-redis-cluster", addrs}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := chatClient(t, addr1, "alice", "member")
	recovered := make(chan bool, 4)
	bob, err := client.New(client.Options{
		URL: "ws://" + addr2 + "/ws",
		Token: func(context.Context) (string, error) {
			return loginToken(t, "http://"+addr2, "bob", "member", nil), nil
		},
		Logger:    wstest.Quiet,
		OnRecover: func(_ string, ok bool) { recovered <- ok },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bob.Close() })
	got := make(chan string, 16)
	client.On(bob, "chat.message", func(_ client.Event, m ChatMessage) { got <- m.Text })
	_, err = alice.Join(ctx, "lobby")
	require.NoError(t, err)
	_, err = bob.Join(ctx, "lobby")
	require.NoError(t, err)
	_, err = alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: "before"})
	require.NoError(t, err)
	assert.Equal(t, "before", waitFor(t, got))

	// The room's keys and channel carry its partition's hash tag (hub/redis
	// with the default 16 partitions).
	h := fnv.New32a()
	_, _ = h.Write([]byte("lobby"))
	cl.MasterOf(fmt.Sprintf("ginws:{%d}room:lobby", h.Sum32()%16)).Stop()

	select {
	case <-recovered:
	case <-ctx.Done():
		t.Fatal("bob's client did not resume after the failover")
	}
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := alice.Request(rctx, "chat.send", SendChat{Room: "lobby", Text: "after"})
		rcancel()
		if err == nil {
			break
		}
		require.NoError(t, ctx.Err(), "no message went through after the failover: %v", err)
	}
	for {
		select {
		case text := <-got:
			if text == "after" {
				return
			}
		case <-ctx.Done():
			t.Fatal("the message sent after the failover did not arrive")
		}
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	free := ln.Addr().String()
	ln.Close()
	addr, _ := startApp(t, []string{}, map[string]string{"ADDR": free})
	assert.Equal(t, free, addr, "ADDR sets the address")

	_, err = parseFlags([]string{"-tls-cert", "x"}, func(string) string { return "" }, io.Discard)
	assert.ErrorContains(t, err, "-tls-cert and -tls-key go together")
	_, err = parseFlags([]string{"-redis", "redis://127.0.0.1:1", "-redis-cluster", "127.0.0.1:2"}, func(string) string { return "" }, io.Discard)
	assert.ErrorContains(t, err, "exclude each other")
	_, err = parseFlags([]string{"-redis-cluster", "127.0.0.1"}, func(string) string { return "" }, io.Discard)
	assert.ErrorContains(t, err, `"127.0.0.1" is not host:port`)
	cfg, err := parseFlags(nil, func(k string) string { return map[string]string{"REDIS_CLUSTER": "127.0.0.1:1, 127.0.0.1:2"}[k] }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, cfg.redisCluster)
	assert.False(t, cfg.redisAsync, "Emit waits for Redis by default")
	_, err = parseFlags([]string{"-redis-async"}, func(string) string { return "" }, io.Discard)
	assert.ErrorContains(t, err, "-redis-async needs -redis or -redis-cluster")
	_, err = parseFlags([]string{"-redis", "redis://127.0.0.1:1"}, func(k string) string { return map[string]string{"REDIS_ASYNC": "often"}[k] }, io.Discard)
	assert.ErrorContains(t, err, `REDIS_ASYNC: "often" is neither true nor false`)
	cfg, err = parseFlags([]string{"-redis", "redis://127.0.0.1:1", "-redis-async=false"}, func(k string) string { return map[string]string{"REDIS_ASYNC": "1"}[k] }, io.Discard)
	require.NoError(t, err)
	assert.False(t, cfg.redisAsync, "the flag beats the environment")
	cfg, err = parseFlags([]string{"-jwt-secret", "flag"}, func(k string) string { return map[string]string{"JWT_SECRET": "env"}[k] }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "flag", cfg.secret, "a flag beats the environment")
	assert.Equal(t, "127.0.0.1:8080", cfg.addr)
}

func TestHelpExitsCleanly(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, &out, nil)
	require.NoError(t, err, "-h is no failure: main exits 0")
	assert.Contains(t, out.String(), "Usage: example [flags]")
	assert.Contains(t, out.String(), "-addr")

	err = run(t.Context(), []string{"-no-such-flag"}, func(string) string { return "" }, io.Discard, nil)
	assert.ErrorContains(t, err, "flag provided but not defined: -no-such-flag")
}

// TestPageAssets: what the page loads is served, its icon included, so that
// a browser logs no 404.
func TestPageAssets(t *testing.T) {
	addr, _ := startApp(t, nil, nil)
	for _, tc := range []struct{ path, contentType string }{
		{"/", "text/html; charset=utf-8"},
		{"/static/app.js", "text/javascript; charset=utf-8"},
		{"/static/style.css", "text/css; charset=utf-8"},
		{"/static/favicon.svg", "image/svg+xml"},
		{"/admin", "text/html; charset=utf-8"},
		{"/static/admin.js", "text/javascript; charset=utf-8"},
		{"/static/admin.css", "text/css; charset=utf-8"},
		{"/favicon.ico", "image/svg+xml"},
		{"/js/ginws.js", "text/javascript; charset=utf-8"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get("http://" + addr + tc.path)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.contentType, resp.Header.Get("Content-Type"))
		})
	}
}

func TestWSS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	addr, _ := startApp(t, []string{"-tls-cert", certFile, "-tls-key", keyFile}, nil)
	tlsConf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer httpc.CloseIdleConnections()
	base := "https://" + addr

	c, err := client.New(client.Options{
		URL:       "wss://" + addr + "/ws",
		TLSConfig: tlsConf,
		Token:     func(context.Context) (string, error) { return loginToken(t, base, "alice", "member", httpc), nil },
		Logger:    wstest.Quiet,
	})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan ChatMessage, 1)
	client.On(c, "chat.message", func(_ client.Event, m ChatMessage) { got <- m })
	_, err = c.Join(ctx, "secure")
	require.NoError(t, err)
	_, err = c.Request(ctx, "chat.send", SendChat{Room: "secure", Text: "over TLS"})
	require.NoError(t, err)
	assert.Equal(t, "over TLS", waitFor(t, got).Text)
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ginws example test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	var buf bytes.Buffer
	require.NoError(t, pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der}))
	require.NoError(t, os.WriteFile(certFile, buf.Bytes(), 0o600))
	buf.Reset()
	require.NoError(t, pem.Encode(&buf, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	require.NoError(t, os.WriteFile(keyFile, buf.Bytes(), 0o600))
	return certFile, keyFile, pool
}

func TestLoginBodyIsBounded(t *testing.T) {
	addr, _ := startApp(t, nil, nil)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 256<<20)
	require.NoError(t, err)
	// More than the socket buffers of both ends hold, so that all of it
	// is sent only if the server reads it.
	const most = 48 << 20
	sent := make(chan int, 1)
	go func() {
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Write([]byte(`{"user":"`))
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for err == nil && n < most {
			var k int
			k, err = conn.Write(chunk)
			n += k
		}
		sent <- n
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "a response before the body is read")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.JSONEq(t, `{"error":{"code":"too_large","message":"the body is larger than 4096 bytes"}}`, string(body))
	assert.True(t, resp.Close, "the connection is closed rather than the rest read")
	select {
	case n := <-sent:
		assert.Less(t, n, most, "the server stopped taking the body")
	case <-time.After(15 * time.Second):
		t.Fatal("the server kept taking the body")
	}
}

// keepAlive opens a connection that asks for /healthz once and then says
// nothing; the reader tells when the server has closed it.
func keepAlive(t *testing.T, addr string) *bufio.Reader {
	t.Helper()
	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { idle.Close() })
	_, err = idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return br
}

func TestHTTPTimeoutsSpareWebSockets(t *testing.T) {
	const timeout = 500 * time.Millisecond
	addr, _ := startAppWith(t, nil, nil, appOptions{tune: func(c *config) { c.readTimeout, c.idleTimeout = timeout, timeout }})
	base := "http://" + addr
	tok := loginToken(t, base, "alice", "member", nil)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", wstest.Bearer(tok))
	require.NoError(t, err)
	defer ws.Close()
	upgraded := time.Now()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage() // welcome
	require.NoError(t, err)

	// A keep-alive connection that asks once and then says nothing.
	br := keepAlive(t, addr)
	// A body that never arrives in full.
	slow, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write([]byte("POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\":"))
	require.NoError(t, err)

	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the server closed the idle connection (not our deadline)")
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err == nil { // answered 400 and closed, or closed at once
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.True(t, resp.Close)
	} else {
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the server closed the slow connection (not our deadline)")
	}

	// The WebSocket, silent for longer than both time-outs, still works.
	require.Greater(t, time.Since(upgraded), timeout)
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"p"}`)))
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"pong","id":"p"}`, string(msg))
}

func TestForwardedForIsNotBelieved(t *testing.T) {
	refusedFrom := func(args []string, env map[string]string) string {
		t.Helper()
		var logs wstest.LogBuffer
		addr, stop := startAppWith(t, args, env, appOptions{out: &logs})
		_, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", http.Header{
			"Origin": {"https://evil.example"}, "X-Forwarded-For": {"203.0.113.7"}, "X-Real-Ip": {"203.0.113.8"},
		})
		require.Error(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.NoError(t, stop())
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "origin refused") {
				_, addr, _ := strings.Cut(line, " addr=")
				return addr
			}
		}
		t.Fatalf("no refusal logged:\n%s", logs.String())
		return ""
	}
	assert.Equal(t, "127.0.0.1", refusedFrom(nil, nil), "the peer's address, whatever the headers say")
	assert.Equal(t, "203.0.113.7", refusedFrom([]string{"-trusted-proxies", "10.0.0.0/8, 127.0.0.1"}, nil), "the proxy's word")
	assert.Equal(t, "203.0.113.7", refusedFrom(nil, map[string]string{"TRUSTED_PROXIES": "127.0.0.0/8"}), "the proxy's word")

	_, err := parseFlags([]string{"-trusted-proxies", "127.0.0.1/33"}, func(string) string { return "" }, io.Discard)
	assert.ErrorContains(t, err, "-trusted-proxies")
}

func TestShutdownClosesHTTPAfterTheHubTimesOut(t *testing.T) {
	addr, stop := startAppWith(t, nil, nil, appOptions{tune: func(c *config) { c.shutdownTimeout = 100 * time.Millisecond }})
	tok := loginToken(t, "http://"+addr, "slow", "member", nil)
	// A session that never reads: its closing handshake waits for a close
	// frame (CloseTimeout, 2 s) beyond the shutdown's time-out.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", wstest.Bearer(tok))
	require.NoError(t, err)
	defer ws.Close()
	br := keepAlive(t, addr)

	assert.ErrorIs(t, stop(), context.DeadlineExceeded, "the hub's time-out is reported")
	_, err = net.DialTimeout("tcp", addr, 5*time.Second)
	assert.Error(t, err, "the listener is closed")
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the idle connection is closed")
}

// With -drain, stopping the example (its SIGTERM path) closes the sessions
// spread over the window, while /healthz and new upgrades answer 503, the
// upgrades with Retry-After.
func TestDrainOnStop(t *testing.T) {
	const n, window = 5, 2 * time.Second
	addr, stop := startApp(t, []string{"-drain", window.String()}, nil)
	base := "http://" + addr
	var readers []*wstest.Reader
	for i := range n {
		tok := loginToken(t, base, "u"+strconv.Itoa(i), "member", nil)
		readers = append(readers, wstest.Dial(t, "ws://"+addr+"/ws", wstest.Bearer(tok)).Background())
	}
	stopped := stopAndWaitForHealthz503(t, base, stop)
	ref := wstest.Refuse(t, "ws://"+addr+"/ws", wstest.Bearer(loginToken(t, base, "late", "member", nil)))
	assert.Equal(t, http.StatusServiceUnavailable, ref.Status)
	assert.NotEmpty(t, ref.Header.Get("Retry-After"))
	closedAt := make(chan time.Time, n)
	for _, r := range readers {
		go func() {
			<-r.Done()
			closedAt <- time.Now()
		}()
	}
	var times []time.Time
	for range n {
		select {
		case at := <-closedAt:
			times = append(times, at)
		case <-time.After(30 * time.Second):
			t.Fatal("a session outlived the drain")
		}
	}
	for _, r := range readers {
		assert.Equal(t, websocket.CloseGoingAway, r.Code())
	}
	// The last close is due 4/5 of the window after the first.
	spread := slices.MaxFunc(times, time.Time.Compare).Sub(slices.MinFunc(times, time.Time.Compare))
	assert.GreaterOrEqual(t, spread, window*(n-2)/n, "the closes are spread over the window")
	require.NoError(t, waitFor(t, stopped))
}

// stopAndWaitForHealthz503 stops the example on a goroutine (SIGTERM's
// path) and returns once /healthz answers 503: the shutdown (or drain) has
// begun. The channel receives run's error.
func stopAndWaitForHealthz503(t *testing.T, base string, stop func() error) <-chan error {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 30*time.Second, time.Millisecond, "/healthz answers 503 from the start of the shutdown")
	return stopped
}

// An image shared in a room reaches its members as a binary frame that
// names the room and the sender; one over the limit, or for a room the
// sender is not in, is refused with a clear error.
func TestShareAnImage(t *testing.T) {
	addr, _ := startApp(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, bob := chatClient(t, addr, "alice", "member"), chatClient(t, addr, "bob", "member")
	for _, c := range []*client.Client{alice, bob} {
		_, err := c.Join(ctx, "lobby")
		require.NoError(t, err)
	}
	got := make(chan []byte, 1)
	bob.OnBinary(func(data []byte) { got <- data })
	image := []byte("\x89PNG\r\n\x1a\n not really")
	require.NoError(t, alice.SendBinary(append([]byte("\x05lobby"), image...)))
	assert.Equal(t, append([]byte("\x05lobby\x05alice"), image...), waitFor(t, got))

	raw := wstest.Dial(t, "ws://"+addr+"/ws", wstest.Bearer(loginToken(t, "http://"+addr, "carol", "member", nil)))
	raw.Join("lobby", nil)
	for _, c := range []struct {
		frame []byte
		code  string
	}{
		{append([]byte("\x05lobby"), make([]byte, maxImage+1)...), "too_large"},
		{append([]byte("\x05other"), image...), "not_member"},
		{[]byte("\x09lobby"), "bad_request"},
	} {
		require.NoError(t, raw.Conn.WriteMessage(websocket.BinaryMessage, c.frame))
		f := raw.ReadUntil("error")
		require.NotNil(t, f.Error)
		assert.Equal(t, c.code, f.Error.Code, f.Error.Message)
	}
}

// With -compress, a client offering permessage-deflate gets it: large events
// come compressed, and a compressed frame that inflates past the frame
// limit closes with 1009. Without it nothing is negotiated.
func TestCompressFlag(t *testing.T) {
	deflate := http.Header{"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"}}
	addr, _ := startApp(t, []string{"-compress"}, nil)
	header := func(user string) http.Header {
		h := wstest.Bearer(loginToken(t, "http://"+addr, user, "member", nil))
		maps.Copy(h, deflate)
		return h
	}
	carol := wstest.RawDial(t, "ws://"+addr+"/ws", header("carol"))
	require.Contains(t, carol.Extensions, "permessage-deflate")
	carol.Send(0xc1, wstest.Deflate(t, []byte(`{"type":"join","id":"j","room":"lobby"}`), 1))
	_, ack := carol.Next("ack")
	require.Equal(t, "j", ack.ID)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := chatClient(t, addr, "alice", "member")
	_, err := alice.Join(ctx, "lobby")
	require.NoError(t, err)
	long := strings.Repeat("compress me ", 40)
	_, err = alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: long})
	require.NoError(t, err)
	z, f := carol.Next("chat.message")
	assert.True(t, z, "a 500-byte event comes compressed")
	assert.Contains(t, string(f.Data), long)

	mallory := wstest.RawDial(t, "ws://"+addr+"/ws", header("mallory"))
	mallory.Send(0xc1, wstest.Deflate(t, make([]byte, 8<<20), 9))
	assert.Equal(t, wire.CloseTooBig, mallory.CloseCode())

	plain, _ := startApp(t, nil, nil)
	h := wstest.Bearer(loginToken(t, "http://"+plain, "dave", "member", nil))
	maps.Copy(h, deflate)
	assert.Empty(t, wstest.RawDial(t, "ws://"+plain+"/ws", h).Extensions)
}
