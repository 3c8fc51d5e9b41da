package middleware

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/logtext"
	"github.com/ginws/ginws/wire"
)

// Options configures the middleware. Auth is required; every other field
// has a safe default.
type Options struct {
	// Auth authenticates the upgrade request. Required.
	Auth Authenticator
	// Tokens switches token sources off (see TokenSources). By default the
	// header, the subprotocol and the query are read, in that order.
	Tokens TokenSources
	// AllowedOrigins lists the browser origins that may connect: exact
	// origins ("https://app.example.com"), hosts ("app.example.com:8080",
	// any scheme) and subdomain patterns ("https://*.example.com",
	// "*.example.com"; a pattern matches no port unless it names one). By
	// default only the request's own host may connect. Requests without an
	// Origin header (non-browser clients) always pass; "null" never does.
	AllowedOrigins []string
	// InsecureSkipOriginCheck lets every origin connect, exposing users to
	// cross-site WebSocket hijacking. Off by default.
	InsecureSkipOriginCheck bool
	// MaxConnsPerAddr limits concurrent connections per client address, as
	// Gin's c.ClientIP() sees it (so trusted proxies are respected; Gin
	// trusts every peer's X-Forwarded-For until Engine.SetTrustedProxies
	// says otherwise). By
	// default 0: no limit, since users behind one NAT share an address. The
	// per-user limit is the hub's Options.MaxSessionsPerUser.
	MaxConnsPerAddr int
	// AdmitRate is how many upgrades a second this middleware admits,
	// AdmitBurst how many at once: beyond them an upgrade gets 503
	// unavailable with Retry-After, before its token is checked, so that
	// a storm of reconnects (a node's population after another node went
	// away) does not starve the sessions already here of CPU. The limit is
	// for the middleware, so for the node when it is mounted once. By
	// default 1,000 a second with a burst of 1,000; a negative AdmitRate
	// admits every upgrade.
	AdmitRate  float64
	AdmitBurst int
	// Logger receives refusals (never tokens; what the client chose, such
	// as the Origin, cut to 128 bytes). By default slog.Default().
	Logger *slog.Logger
	// Observer is told of every refusal, for metrics (package metrics
	// implements it). By default none.
	Observer Observer
}

// Observer is told of every upgrade refused before the upgrade, with the
// refusal's code (unauthorized, forbidden_origin, ...).
type Observer interface {
	Refused(code wire.Code)
}

// New returns the Gin handler that authenticates an upgrade request, checks
// its origin and limits, and hands the connection to the hub. Mount it on a
// GET route; it returns once the connection is handed over (the session
// runs on its own goroutine), so Gin and net/http free the request. Refusals happen before the upgrade, as JSON
// {"error":{"code":"...","message":"..."}} with status 400 bad_request (not a
// WebSocket upgrade, or over HTTP/1.0), 401 unauthorized, 403 forbidden_origin, 429
// too_many_connections or 503 unavailable with Retry-After (the hub shuts
// down, is at hub.Options.MaxSessions, or upgrades come faster than
// AdmitRate).
//
// It panics if h or o.Auth is nil or an allowed origin is malformed.
func New(h *hub.Hub, o Options) gin.HandlerFunc {
	if h == nil {
		panic("middleware: hub is nil")
	}
	if o.Auth == nil {
		panic("middleware: Options.Auth is nil")
	}
	origins := newOriginPolicy(o.AllowedOrigins, o.InsecureSkipOriginCheck)
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	addrs := &addrLimiter{max: o.MaxConnsPerAddr, n: make(map[string]int)}
	admit := newAdmission(o.AdmitRate, o.AdmitBurst)
	// The Gin contexts of refreshes: their remote address is the client's
	// address as the upgrade's engine saw it, proxies resolved.
	engine := gin.New()
	_ = engine.SetTrustedProxies(nil)
	refuse := func(c *gin.Context, status int, code wire.Code, message string) {
		if o.Observer != nil {
			o.Observer.Refused(code)
		}
		c.AbortWithStatusJSON(status, gin.H{"error": gin.H{"code": code, "message": message}})
	}
	// Behind a load balancer the next attempt goes to another node;
	// clients that read Retry-After wait a second and their jitter first,
	// so that a draining node's refusals do not turn into a storm.
	shuttingDown := func(c *gin.Context) {
		c.Header("Retry-After", "1")
		refuse(c, http.StatusServiceUnavailable, wire.CodeUnavailable, "the server is shutting down")
	}

	return func(c *gin.Context) {
		r := c.Request
		if !websocket.IsWebSocketUpgrade(r) {
			refuse(c, http.StatusBadRequest, wire.CodeBadRequest, "this endpoint only accepts WebSocket upgrades")
			return
		}
		// RFC 6455 section 4.1; an HTTP/1.0 peer has no Upgrade semantics,
		// and gorilla/websocket does not check the version.
		if !r.ProtoAtLeast(1, 1) {
			refuse(c, http.StatusBadRequest, wire.CodeBadRequest, "WebSocket upgrades need HTTP/1.1 or later")
			return
		}
		if !h.Accepting() {
			shuttingDown(c)
			return
		}
		if origin := r.Header.Get("Origin"); !origins.allow(origin, r.Host) {
			log.Info("ginws: origin refused", "origin", logtext.Clip(origin), "addr", c.ClientIP())
			refuse(c, http.StatusForbidden, wire.CodeForbiddenOrigin, "origin not allowed")
			return
		}
		token, present := extractToken(r, o.Tokens)
		if present && token == "" {
			log.Info("ginws: malformed token", "addr", c.ClientIP())
			refuse(c, http.StatusUnauthorized, wire.CodeUnauthorized, "malformed token")
			return
		}
		// Admitted before the token is checked: that is the work a storm
		// of reconnects would crowd the node with.
		if wait, ok := admit.take(); !ok {
			c.Header("Retry-After", wait)
			refuse(c, http.StatusServiceUnavailable, wire.CodeUnavailable, "too many connections at once: retry later")
			return
		}
		p, err := o.Auth.Authenticate(c, token)
		if err != nil {
			// The error may quote claims (or, from an Authenticator of the
			// application's, a key id) but never the token itself.
			log.Info("ginws: authentication failed", "addr", c.ClientIP(), "err", logtext.Clip(err.Error()))
			refuse(c, http.StatusUnauthorized, wire.CodeUnauthorized, "authentication failed")
			return
		}
		addr := c.ClientIP()
		if !addrs.acquire(addr) {
			refuse(c, http.StatusTooManyRequests, wire.CodeTooManyConnections, "too many connections from this address")
			return
		}
		err = h.AcceptRefreshable(c.Writer, r, p, func() { addrs.release(addr) }, refresher(o.Auth, c, engine))
		switch {
		case errors.Is(err, hub.ErrTooManySessions):
			refuse(c, http.StatusTooManyRequests, wire.CodeTooManyConnections, "too many connections for this user")
		case errors.Is(err, hub.ErrHubClosed):
			shuttingDown(c)
		case errors.Is(err, hub.ErrHubFull):
			// Another node may have room: come back later, not at once.
			c.Header("Retry-After", "5")
			refuse(c, http.StatusServiceUnavailable, wire.CodeUnavailable, "the server is at its session limit")
		default:
			// The connection is the hub's now; nothing else may write.
			c.Abort()
		}
	}
}

// addrLimiter counts open connections per client address.
type addrLimiter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func (l *addrLimiter) acquire(addr string) bool {
	if l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[addr] >= l.max {
		return false
	}
	l.n[addr]++
	return true
}

func (l *addrLimiter) release(addr string) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[addr]--; l.n[addr] <= 0 {
		delete(l.n, addr)
	}
}

// Defaults of Options.AdmitRate and Options.AdmitBurst.
const (
	DefaultAdmitRate  = 1000
	DefaultAdmitBurst = 1000
)

// admission is the node-wide rate of admitted upgrades; nil admits all.
type admission struct{ lim *rate.Limiter }

func newAdmission(r float64, burst int) *admission {
	if r < 0 {
		return &admission{}
	}
	if r == 0 {
		r = DefaultAdmitRate
	}
	if burst <= 0 {
		burst = DefaultAdmitBurst
	}
	return &admission{lim: rate.NewLimiter(rate.Limit(r), burst)}
}

// take admits an upgrade, or returns the Retry-After (whole seconds, at
// least 1) until the next one would be.
func (a *admission) take() (retryAfter string, ok bool) {
	if a.lim == nil {
		return "", true
	}
	now := time.Now()
	if a.lim.AllowN(now, 1) {
		return "", true
	}
	delay := (1 - a.lim.TokensAt(now)) / float64(a.lim.Limit())
	return strconv.Itoa(max(1, int(math.Ceil(delay)))), false
}

// refresher checks the tokens of a session's in-band refreshes
// (PROTOCOL.md section 6) as the upgrade's was: the same shape checks, then
// the Authenticator. That gets a Gin context whose request is like the
// upgrade's (method, path, host, route parameters, TLS state, and as
// remote address the client's, c.ClientIP() of the upgrade) but without its
// query or headers, which may hold the old token and which the session
// does not keep, nor the values earlier handlers set: FromGinContext
// refuses every refresh.
func refresher(auth Authenticator, up *gin.Context, engine *gin.Engine) hub.Refresher {
	r := up.Request
	method, path, host, tls := r.Method, r.URL.Path, r.Host, r.TLS
	remote := net.JoinHostPort(up.ClientIP(), "0")
	params := slices.Clone(up.Params)
	return func(ctx context.Context, token string) (hub.Principal, error) {
		if wellFormed(token) == "" {
			return hub.Principal{}, ErrInvalidToken
		}
		req, err := http.NewRequestWithContext(ctx, method, path, nil)
		if err != nil {
			return hub.Principal{}, err
		}
		req.Host, req.RemoteAddr, req.TLS = host, remote, tls
		c := gin.CreateTestContextOnly(discard{}, engine)
		c.Request, c.Params = req, params
		return auth.Authenticate(c, token)
	}
}

// discard is the ResponseWriter of a refresh's Gin context: nothing is
// written to it.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
