package middleware_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

func TestMain(m *testing.M) { wstest.Main(m) }

// server mounts a fixture hub (wstest.NewHub, whose whoami answers the
// principal) with the middleware, as an application does, on loopback.
func server(t *testing.T, hopts hub.Options, mopts middleware.Options) (string, *hub.Hub) {
	t.Helper()
	s := wstest.StartApp(t, wstest.NewHub(hopts), wstest.App{Middleware: mopts})
	return s.URL, s.Hub
}

type refusal struct {
	status int
	code   string
}

// connect dials and returns the user id the hub saw, or the refusal.
func connect(t *testing.T, url string, header http.Header, protocols ...string) (string, refusal) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, header)
	if err != nil {
		require.NotNil(t, resp, "dial: %v", err)
		var body struct {
			Error struct{ Code, Message string }
		}
		raw, _ := io.ReadAll(resp.Body)
		require.NoError(t, json.Unmarshal(raw, &body), "body %s", raw)
		require.NotEmpty(t, body.Error.Message)
		return "", refusal{resp.StatusCode, body.Error.Code}
	}
	defer conn.Close()
	if len(protocols) > 0 {
		assert.Equal(t, wire.Subprotocol, resp.Header.Get("Sec-WebSocket-Protocol"), "only ginws.v1 is echoed")
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = conn.ReadMessage() // welcome
	require.NoError(t, err)
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"whoami","id":"1"}`)))
	_, msg, err := conn.ReadMessage()
	require.NoError(t, err)
	var ack struct {
		Data struct{ User string }
	}
	require.NoError(t, json.Unmarshal(msg, &ack), "%s", msg)
	return ack.Data.User, refusal{}
}

func TestTokenSources(t *testing.T) {
	url, _ := server(t, hub.Options{}, middleware.Options{Tokens: middleware.TokenSources{Cookie: "session"}})
	tok := wstest.Token(t, wstest.Claims("alice"))

	user, _ := connect(t, url, wstest.Bearer(tok))
	assert.Equal(t, "alice", user, "Authorization header")

	user, _ = connect(t, url, nil, wire.Subprotocol, "bearer."+tok)
	assert.Equal(t, "alice", user, "subprotocol, as browsers send it")

	user, _ = connect(t, url+"?access_token="+tok, nil)
	assert.Equal(t, "alice", user, "query")

	user, _ = connect(t, url, http.Header{"Cookie": {"session=" + tok}})
	assert.Equal(t, "alice", user, "cookie")

	// First match wins: a bad header is not rescued by a good query token.
	_, ref := connect(t, url+"?access_token="+tok, wstest.Bearer("not-a-jwt"))
	assert.Equal(t, refusal{401, "unauthorized"}, ref)
	_, ref = connect(t, url, nil)
	assert.Equal(t, refusal{401, "unauthorized"}, ref, "no token")
	_, ref = connect(t, url, http.Header{"Authorization": {"Basic abc"}})
	assert.Equal(t, refusal{401, "unauthorized"}, ref, "another scheme")
}

func TestTokenSourcesSwitchedOff(t *testing.T) {
	url, _ := server(t, hub.Options{}, middleware.Options{Tokens: middleware.TokenSources{NoHeader: true, NoQuery: true, NoSubprotocol: true}})
	tok := wstest.Token(t, wstest.Claims("alice"))
	for name, try := range map[string]func() refusal{
		"header":      func() refusal { _, r := connect(t, url, wstest.Bearer(tok)); return r },
		"query":       func() refusal { _, r := connect(t, url+"?access_token="+tok, nil); return r },
		"subprotocol": func() refusal { _, r := connect(t, url, nil, wire.Subprotocol, "bearer."+tok); return r },
	} {
		assert.Equal(t, refusal{401, "unauthorized"}, try(), name)
	}
}

func TestJWTRefusals(t *testing.T) {
	url, _ := server(t, hub.Options{}, middleware.Options{Auth: middleware.JWT(middleware.JWTOptions{
		Secret: wstest.Secret, Issuer: "ginws-test", Audience: "chat", Leeway: time.Second,
	})})
	ok := func() jwt.MapClaims {
		c := wstest.Claims("alice")
		c["iss"], c["aud"] = "ginws-test", "chat"
		return c
	}
	with := func(k string, v any) jwt.MapClaims {
		c := ok()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	user, _ := connect(t, url, wstest.Bearer(wstest.Token(t, ok())))
	assert.Equal(t, "alice", user)

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, ok()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	wrongKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, ok()).SignedString([]byte("another-secret-of-32-bytes-long!!"))
	require.NoError(t, err)
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, ok()).SignedString(wstest.Secret)
	require.NoError(t, err)

	for name, tok := range map[string]string{
		"expired":         wstest.Token(t, with("exp", time.Now().Add(-time.Minute).Unix())),
		"not yet valid":   wstest.Token(t, with("nbf", time.Now().Add(time.Minute).Unix())),
		"issued later":    wstest.Token(t, with("iat", time.Now().Add(time.Minute).Unix())),
		"no expiry":       wstest.Token(t, with("exp", nil)),
		"no subject":      wstest.Token(t, with("sub", nil)),
		"wrong issuer":    wstest.Token(t, with("iss", "someone-else")),
		"wrong audience":  wstest.Token(t, with("aud", "billing")),
		"alg none":        none,
		"wrong key":       wrongKey,
		"alg not allowed": hs512,
		"malformed":       "a.b.c",
		"roles not text":  wstest.Token(t, with("roles", []any{1, 2})),
	} {
		_, ref := connect(t, url, wstest.Bearer(tok))
		assert.Equal(t, refusal{401, "unauthorized"}, ref, name)
	}
}

func TestJWTAlgorithms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		opts   middleware.JWTOptions
		method jwt.SigningMethod
		key    any
	}{
		{"HS384", middleware.JWTOptions{Secret: wstest.Secret, Algorithms: []string{"HS384"}}, jwt.SigningMethodHS384, wstest.Secret},
		{"HS512", middleware.JWTOptions{Secret: wstest.Secret, Algorithms: []string{"HS512"}}, jwt.SigningMethodHS512, wstest.Secret},
		{"RS256", middleware.JWTOptions{PublicKey: &rsaKey.PublicKey}, jwt.SigningMethodRS256, rsaKey},
		{"ES256", middleware.JWTOptions{PublicKey: &ecKey.PublicKey}, jwt.SigningMethodES256, ecKey},
		{"EdDSA", middleware.JWTOptions{PublicKey: edPub}, jwt.SigningMethodEdDSA, edKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := server(t, hub.Options{}, middleware.Options{Auth: middleware.JWT(tc.opts)})
			tok, err := jwt.NewWithClaims(tc.method, wstest.Claims("bob", "admin")).SignedString(tc.key)
			require.NoError(t, err)
			user, _ := connect(t, url, wstest.Bearer(tok))
			assert.Equal(t, "bob", user)
			// An HMAC token signed with the public key's bytes (the
			// classic algorithm confusion) is refused.
			if tc.opts.PublicKey != nil {
				forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, wstest.Claims("mallory")).SignedString([]byte("public key bytes"))
				require.NoError(t, err)
				_, ref := connect(t, url, wstest.Bearer(forged))
				assert.Equal(t, refusal{401, "unauthorized"}, ref)
			}
		})
	}
}

func TestJWTPrincipal(t *testing.T) {
	auth := middleware.JWT(middleware.JWTOptions{Secret: wstest.Secret, RolesClaim: "scope"})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	p, err := auth.Authenticate(nil, wstest.Token(t, jwt.MapClaims{"sub": "u1", "scope": "member admin", "exp": exp.Unix(), "team": "red"}))
	require.NoError(t, err)
	assert.Equal(t, "u1", p.UserID)
	assert.Equal(t, []string{"member", "admin"}, p.Roles)
	assert.True(t, exp.Equal(p.Expires))
	assert.Equal(t, "red", p.Claims["team"])
	_, err = auth.Authenticate(nil, "")
	assert.ErrorIs(t, err, middleware.ErrNoToken)
	_, err = auth.Authenticate(nil, "x.y.z")
	assert.ErrorIs(t, err, middleware.ErrInvalidToken)
}

func TestJWTConfigurationPanics(t *testing.T) {
	assert.PanicsWithValue(t, "middleware: JWTOptions needs Secret, PublicKey or Keyfunc", func() { middleware.JWT(middleware.JWTOptions{}) })
	assert.Panics(t, func() { middleware.JWT(middleware.JWTOptions{Secret: wstest.Secret, Algorithms: []string{"none"}}) })
	assert.PanicsWithValue(t, "middleware: Options.Auth is nil", func() { middleware.New(hub.New(hub.Options{}), middleware.Options{}) })
	assert.Panics(t, func() {
		middleware.New(hub.New(hub.Options{}), middleware.Options{Auth: middleware.FromGinContext("p"), AllowedOrigins: []string{"https://a.*.com"}})
	})
}

func TestOrigins(t *testing.T) {
	tok := wstest.Token(t, wstest.Claims("alice"))
	sameHost, _ := server(t, hub.Options{}, middleware.Options{})
	listed, _ := server(t, hub.Options{}, middleware.Options{AllowedOrigins: []string{"https://app.example.com", "*.example.org", "https://*.example.net"}})
	insecure, _ := server(t, hub.Options{}, middleware.Options{InsecureSkipOriginCheck: true})
	host := strings.TrimPrefix(strings.TrimSuffix(sameHost, "/ws"), "ws://")

	for _, tc := range []struct {
		url, origin string
		ok          bool
	}{
		{sameHost, "", true},
		{sameHost, "http://" + host, true},
		{sameHost, "http://evil.example", false},
		{sameHost, "null", false},
		{sameHost, "http://" + host + ".evil.io", false},
		{listed, "https://app.example.com", true},
		{listed, "http://app.example.com", false},
		{listed, "https://app.example.com.evil.io", false},
		{listed, "https://chat.example.org", true},
		{listed, "http://a.b.example.org", true},
		{listed, "https://example.org", false},
		{listed, "https://evilexample.org", false},
		{listed, "https://example.org.evil.io", false},
		{listed, "https://x.example.net", true},
		{listed, "http://x.example.net", false},
		{listed, "https://x.example.net:8443", false},
		{listed, "null", false},
		{listed, "https://user@app.example.com", false},
		{listed, "", true},
		{insecure, "https://anything.example", true},
	} {
		header := wstest.Bearer(tok)
		if tc.origin != "" {
			header.Set("Origin", tc.origin)
		}
		user, ref := connect(t, tc.url, header)
		if tc.ok {
			assert.Equal(t, "alice", user, "origin %q", tc.origin)
		} else {
			assert.Equal(t, refusal{403, "forbidden_origin"}, ref, "origin %q", tc.origin)
		}
	}
}

func TestRefusals(t *testing.T) {
	url, h := server(t, hub.Options{MaxSessionsPerUser: 1}, middleware.Options{MaxConnsPerAddr: 2})

	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	require.NoError(t, err)
	var body struct{ Error struct{ Code string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, "bad_request", body.Error.Code)

	// Read in the background, so that the shutdown's closing handshakes
	// are answered.
	wstest.Dial(t, url, wstest.AuthHeader(t, "alice")).Background()
	_, ref := connect(t, url, wstest.AuthHeader(t, "alice"))
	assert.Equal(t, refusal{429, "too_many_connections"}, ref, "per user")

	wstest.Dial(t, url, wstest.AuthHeader(t, "bob")).Background()
	_, ref = connect(t, url, wstest.AuthHeader(t, "carol"))
	assert.Equal(t, refusal{429, "too_many_connections"}, ref, "per address")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.Shutdown(ctx))
	_, ref = connect(t, url, wstest.AuthHeader(t, "dave"))
	assert.Equal(t, refusal{503, "unavailable"}, ref)
}

func TestFromGinContextInRouterGroup(t *testing.T) {
	s := wstest.StartApp(t, wstest.NewHub(hub.Options{}), wstest.App{
		Middleware: middleware.Options{Auth: middleware.FromGinContext("principal")},
		Path:       "/api/ws",
		Routes: func(r *gin.Engine, ws gin.HandlerFunc) {
			r.Use(gin.Recovery())
			api := r.Group("/api", func(c *gin.Context) {
				// The application's own API-key check.
				if c.GetHeader("X-API-Key") != "k1" {
					c.AbortWithStatus(http.StatusUnauthorized)
					return
				}
				c.Set("principal", hub.Principal{UserID: "service-1"})
			}, func(c *gin.Context) {
				c.Header("Access-Control-Allow-Origin", "*") // a CORS-style middleware
				c.Next()
			})
			api.GET("/ws", ws)
		},
	})
	user, _ := connect(t, s.URL, http.Header{"X-API-Key": {"k1"}})
	assert.Equal(t, "service-1", user)
}

func TestTokensStayOutOfLogs(t *testing.T) {
	var ginLog, appLog wstest.LogBuffer
	old := gin.DefaultWriter
	gin.DefaultWriter = &ginLog
	defer func() { gin.DefaultWriter = old }()

	h := wstest.NewHub(hub.Options{Logger: slog.New(slog.NewTextHandler(&appLog, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	url := wstest.StartApp(t, h, wstest.App{
		Middleware: middleware.Options{Logger: slog.New(slog.NewTextHandler(&appLog, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		Engine:     gin.Default(), // Logger and Recovery, as most applications have
		Wrap:       middleware.HideQueryToken,
	}).URL

	good := wstest.Token(t, wstest.Claims("alice"))
	expired := wstest.Token(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	user, _ := connect(t, url+"?access_token="+good+"&room=lobby", nil)
	assert.Equal(t, "alice", user)
	_, ref := connect(t, url+"?access_token="+expired, nil)
	assert.Equal(t, refusal{401, "unauthorized"}, ref)
	_, ref = connect(t, url, wstest.Bearer(expired))
	assert.Equal(t, refusal{401, "unauthorized"}, ref)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.Shutdown(ctx))

	// Gin logs the upgrade when the handler returns, which may be after the
	// client has its welcome frame.
	assert.Eventually(t, func() bool { return strings.Contains(ginLog.String(), "/ws?room=lobby") }, 5*time.Second, 10*time.Millisecond,
		"other query parameters are still logged")
	logs := ginLog.String() + appLog.String()
	assert.Contains(t, appLog.String(), "authentication failed")
	for _, tok := range []string{good, expired} {
		assert.NotContains(t, logs, tok)
		assert.NotContains(t, logs, strings.Split(tok, ".")[2], "not even the signature")
	}
}

func TestHTTP10UpgradeRefusedFirst(t *testing.T) {
	var authCalls int
	var refused []wire.Code
	h := hub.New(hub.Options{Logger: wstest.Quiet})
	r := gin.New()
	r.GET("/ws", middleware.New(h, middleware.Options{
		Auth: middleware.AuthFunc(func(*gin.Context, string) (hub.Principal, error) {
			authCalls++
			return hub.Principal{UserID: "alice"}, nil
		}),
		Observer: observerFunc(func(code wire.Code) { refused = append(refused, code) }),
		Logger:   wstest.Quiet,
	}))
	req := httptest.NewRequest(http.MethodGet, "/ws", nil)
	req.Proto, req.ProtoMinor = "HTTP/1.0", 0
	req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Authorization": {"Bearer x"}}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.JSONEq(t, `{"error":{"code":"bad_request","message":"WebSocket upgrades need HTTP/1.1 or later"}}`, w.Body.String())
	assert.Zero(t, authCalls, "refused before authentication")
	assert.Equal(t, []wire.Code{wire.CodeBadRequest}, refused)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.Shutdown(ctx))
}

type observerFunc func(code wire.Code)

func (f observerFunc) Refused(code wire.Code) { f(code) }

func TestJWTCritRefused(t *testing.T) {
	auth := middleware.JWT(middleware.JWTOptions{Secret: wstest.Secret})
	sign := func(crit any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, wstest.Claims("alice"))
		if crit != nil {
			tok.Header["crit"] = crit
			tok.Header["exp-check"] = true
		}
		s, err := tok.SignedString(wstest.Secret)
		require.NoError(t, err)
		return s
	}
	_, err := auth.Authenticate(nil, sign(nil))
	require.NoError(t, err, "no crit")
	for name, crit := range map[string]any{
		"unknown extension": []string{"exp-check"},
		"empty list":        []string{},
		"a string":          "exp-check",
		"not strings":       []any{1},
		"an object":         map[string]any{"exp-check": true},
	} {
		_, err := auth.Authenticate(nil, sign(crit))
		assert.ErrorIs(t, err, middleware.ErrInvalidToken, name)
	}
}

func TestAttackerStringsClippedInLogs(t *testing.T) {
	var logs wstest.LogBuffer
	long := strings.Repeat("é", 30<<10) // 60 KB, two bytes a rune
	url, _ := server(t, hub.Options{}, middleware.Options{
		Auth: middleware.AuthFunc(func(_ *gin.Context, tok string) (hub.Principal, error) {
			// An application's error that quotes what the client sent.
			return hub.Principal{}, fmt.Errorf("no such key id %q", long+tok)
		}),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	_, ref := connect(t, url, http.Header{"Origin": {"http://" + long}})
	assert.Equal(t, refusal{403, "forbidden_origin"}, ref)
	_, ref = connect(t, url, wstest.Bearer("abc"))
	assert.Equal(t, refusal{401, "unauthorized"}, ref)

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 2)
	for _, line := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		assert.Less(t, len(line), 512, "%.200s", line)
		for _, k := range []string{"origin", "err"} {
			if v, ok := rec[k].(string); ok {
				assert.True(t, utf8.ValidString(v), "a rune is never cut in half")
				assert.NotContains(t, v, "\uFFFD", "a rune is never cut in half")
				assert.Contains(t, v, "more bytes", "the cut is marked")
			}
		}
	}
}

// A hub with a drain window closes its sessions with 1001 one after the
// other, in random order, over the window; from the drain's start new
// upgrades get 503 with Retry-After and Health reports it.
func TestDrainSpreadsTheCloses(t *testing.T) {
	const n, window = 20, 2 * time.Second
	url, h := server(t, hub.Options{DrainWindow: window}, middleware.Options{})
	readers := make([]*wstest.Reader, n)
	for i := range readers {
		readers[i] = wstest.Dial(t, url, wstest.AuthHeader(t, "u"+strconv.Itoa(i))).Background()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	require.Eventually(t, func() bool { return h.Health(ctx) != nil }, 10*time.Second, time.Millisecond, "Health reports the drain")
	ref := wstest.Refuse(t, url, wstest.AuthHeader(t, "late"))
	assert.Equal(t, http.StatusServiceUnavailable, ref.Status)
	assert.Equal(t, "unavailable", ref.Code)
	assert.Equal(t, "1", ref.Header.Get("Retry-After"))

	closed := make([]time.Time, n)
	order := make([]int, 0, n)
	remaining := map[int]bool{}
	for i := range n {
		remaining[i] = true
	}
	for deadline := time.Now().Add(30 * time.Second); len(remaining) > 0; {
		require.True(t, time.Now().Before(deadline), "sessions still open: %v", remaining)
		for i := range remaining {
			select {
			case <-readers[i].Done():
				closed[i] = time.Now()
				order = append(order, i)
				delete(remaining, i)
				assert.Equal(t, websocket.CloseGoingAway, readers[i].Code())
			default:
			}
		}
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, <-done)
	first, last := slices.MinFunc(closed, time.Time.Compare), slices.MaxFunc(closed, time.Time.Compare)
	// The last close is due at 19/20 of the window after the first; a busy
	// machine can only make it later.
	assert.GreaterOrEqual(t, last.Sub(first), window*(n-2)/n, "the closes are spread over the window")
	assert.False(t, slices.IsSorted(order), "in random order, not the order of arrival")
}

// Upgrades beyond AdmitRate and AdmitBurst get 503 with Retry-After before
// their token is checked.
func TestAdmission(t *testing.T) {
	// One upgrade per 100 s after a burst of two: the third waits, however
	// slow the machine.
	url, _ := server(t, hub.Options{}, middleware.Options{AdmitRate: 0.01, AdmitBurst: 2})
	for i := range 2 {
		wstest.Dial(t, url, wstest.AuthHeader(t, "u"+strconv.Itoa(i))).Background()
	}
	ref := wstest.Refuse(t, url, http.Header{"Authorization": {"Bearer not-even-a-token"}})
	assert.Equal(t, http.StatusServiceUnavailable, ref.Status)
	assert.Equal(t, "unavailable", ref.Code, "refused before the token is checked")
	assert.Equal(t, "100", ref.Header.Get("Retry-After"))
}

// A refresh is checked by the upgrade's Authenticator (here JWT): a token
// of the same user moves the expiry and applies its roles; an expired one,
// or another user's, changes nothing.
func TestRefreshAppliesTheNewToken(t *testing.T) {
	h := wstest.NewHub(hub.Options{})
	hub.Handle(h, "admin.only", func(*hub.Context, struct{}) (any, error) { return "ok", nil }, hub.RequireRole("admin"))
	s := wstest.StartApp(t, h, wstest.App{})
	c := wstest.Dial(t, s.URL, wstest.AuthHeader(t, "alice", "member"))
	code := func(f wstest.Frame) string {
		if f.Error == nil {
			return f.Type
		}
		return f.Error.Code
	}
	assert.Equal(t, "forbidden", code(c.Request("admin.only", "1", "", nil)))

	expired := wstest.Claims("alice", "admin")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	assert.Equal(t, "unauthorized", code(c.Request("refresh", "2", "", map[string]string{"token": wstest.Token(t, expired)})))
	assert.Equal(t, "forbidden", code(c.Request("refresh", "3", "", map[string]string{"token": wstest.Token(t, wstest.Claims("bob", "admin"))})))
	assert.Equal(t, "forbidden", code(c.Request("admin.only", "4", "", nil)), "refusals change nothing")

	claims := wstest.Claims("alice", "admin")
	claims["exp"] = time.Now().Add(2 * time.Hour).Unix()
	f := c.Request("refresh", "5", "", map[string]string{"token": wstest.Token(t, claims)})
	require.Equal(t, "ack", code(f))
	assert.JSONEq(t, fmt.Sprintf(`{"expires":%d}`, claims["exp"].(int64)*1000), string(f.Data))
	assert.Equal(t, "ack", code(c.Request("admin.only", "6", "", nil)), "the new roles apply")
}

// The Authenticator is the application's code: a panic during a refresh is
// an internal error for that request, and the session and the process go
// on. It sees the client's address as the upgrade did, proxies resolved,
// and the route's parameters.
func TestRefreshContext(t *testing.T) {
	type seen struct{ ip, room string }
	calls := make(chan seen, 4)
	auth := middleware.AuthFunc(func(c *gin.Context, token string) (hub.Principal, error) {
		if token == "boom" {
			panic("the application's bug")
		}
		calls <- seen{c.ClientIP(), c.Param("room")}
		return hub.Principal{UserID: "alice"}, nil
	})
	engine := gin.New()
	require.NoError(t, engine.SetTrustedProxies([]string{"127.0.0.1"}))
	s := wstest.StartApp(t, wstest.NewHub(hub.Options{}), wstest.App{Engine: engine, Path: "/ws/:room",
		Routes:     func(r *gin.Engine, ws gin.HandlerFunc) { r.GET("/ws/:room", ws) },
		Middleware: middleware.Options{Auth: auth}})
	c := wstest.Dial(t, strings.TrimSuffix(s.URL, "/ws/:room")+"/ws/lobby", http.Header{"Authorization": {"Bearer alice"}, "X-Forwarded-For": {"203.0.113.9"}})
	upgrade := <-calls
	assert.Equal(t, seen{"203.0.113.9", "lobby"}, upgrade)

	f := c.Request("refresh", "1", "", map[string]string{"token": "boom"})
	require.NotNil(t, f.Error)
	assert.Equal(t, "internal", f.Error.Code)
	f = c.Request("refresh", "2", "", map[string]string{"token": "again"})
	assert.Equal(t, "ack", f.Type, "the session goes on")
	assert.Equal(t, upgrade, <-calls, "the refresh sees what the upgrade saw")
}

// token.expiring comes once per expiry: a refresh with a token that
// expires at the same time (a provider that caches its token) is not told
// again, and the session ends with 4401 at that time.
func TestTokenExpiringOncePerExpiry(t *testing.T) {
	s := wstest.StartApp(t, wstest.NewHub(hub.Options{}), wstest.App{})
	claims := wstest.Claims("alice")
	claims["exp"] = time.Now().Add(3 * time.Second).Unix()
	tok := wstest.Token(t, claims)
	c := wstest.Dial(t, s.URL, wstest.Bearer(tok))
	notice := c.ReadUntil("token.expiring")
	var in struct{ In int64 }
	require.NoError(t, json.Unmarshal(notice.Data, &in))
	assert.Positive(t, in.In)
	c.Send(map[string]any{"type": "refresh", "id": "r", "data": map[string]string{"token": tok}})
	for {
		f, ce := c.Next()
		if ce != nil {
			assert.Equal(t, 4401, ce.Code)
			return
		}
		require.NotEqual(t, "token.expiring", f.Type, "told once")
	}
}
