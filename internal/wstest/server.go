package wstest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/middleware"
)

// Server is a hub served on a loopback port: mounted as an application
// mounts it (StartApp), or behind a stand-in for the middleware (Serve).
// Close, or the end of the test, shuts the hub down (bounded), then the
// HTTP server.
type Server struct {
	Hub  *hub.Hub
	HTTP *httptest.Server
	// URL is the WebSocket URL of the hub's route (ws://127.0.0.1:port/ws).
	URL string

	once sync.Once
	err  error
}

// App says how StartApp mounts a hub. The zero value is an application's
// usual setup: middleware.New(h, Middleware) on GET /ws of gin.New().
type App struct {
	// Middleware is passed to middleware.New. A nil Auth is
	// middleware.JWT with Secret; a nil Logger is Quiet.
	Middleware middleware.Options
	// Engine is the Gin engine; gin.New() when nil.
	Engine *gin.Engine
	// Routes registers ws, the middleware, on the engine, with whatever
	// else the test needs (other routes, groups); r.GET(Path, ws) when
	// nil.
	Routes func(r *gin.Engine, ws gin.HandlerFunc)
	// Path is the WebSocket route's path, the end of Server.URL; "/ws"
	// when empty.
	Path string
	// Wrap, when set, wraps the engine as an application's outer handler.
	Wrap func(http.Handler) http.Handler
	// Addr is the loopback address to listen on; a free port when empty.
	// A test restarts a server on the address of one it closed.
	Addr string
	// Server adjusts the http.Server (time-outs, header limits) before it
	// starts.
	Server func(*http.Server)
}

// StartApp serves h as a says; the server closes when the test ends.
func StartApp(t testing.TB, h *hub.Hub, a App) *Server {
	t.Helper()
	s, err := ListenApp(h, a)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// ListenApp is StartApp for code without a *testing.T (an Example): the
// caller closes the server.
func ListenApp(h *hub.Hub, a App) (*Server, error) {
	if a.Middleware.Auth == nil {
		a.Middleware.Auth = middleware.JWT(middleware.JWTOptions{Secret: Secret})
	}
	if a.Middleware.Logger == nil {
		a.Middleware.Logger = Quiet
	}
	if a.Path == "" {
		a.Path = "/ws"
	}
	r := a.Engine
	if r == nil {
		r = gin.New()
	}
	ws := middleware.New(h, a.Middleware)
	if a.Routes != nil {
		a.Routes(r, ws)
	} else {
		r.GET(a.Path, ws)
	}
	var handler http.Handler = r
	if a.Wrap != nil {
		handler = a.Wrap(handler)
	}
	return listen(h, handler, a.Path, a.Addr, a.Server)
}

// Serve starts a loopback server whose upgrade takes the principal from the
// query (?user=alice&roles=a,b&ttl=1s), standing in for the middleware, and
// returns its ws:// URL. The hub is shut down (bounded) when the test ends.
func Serve(t testing.TB, h *hub.Hub) string {
	t.Helper()
	s, err := listen(h, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := hub.Principal{UserID: q.Get("user")}
		if roles := q.Get("roles"); roles != "" {
			p.Roles = strings.Split(roles, ",")
		}
		if ttl, err := time.ParseDuration(q.Get("ttl")); err == nil {
			p.Expires = time.Now().Add(ttl)
		}
		err := h.Accept(w, r, p, nil)
		switch {
		case errors.Is(err, hub.ErrTooManySessions):
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		case errors.Is(err, hub.ErrHubClosed):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
		// Otherwise the connection is the hub's (it answers a failed handshake itself).
	}), "", "", nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s.URL
}

func listen(h *hub.Hub, handler http.Handler, path, addr string, configure func(*http.Server)) (*Server, error) {
	srv := httptest.NewUnstartedServer(handler)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		srv.Listener.Close()
		srv.Listener = ln
	}
	if configure != nil {
		configure(srv.Config)
	}
	srv.Start()
	return &Server{Hub: h, HTTP: srv, URL: "ws" + strings.TrimPrefix(srv.URL, "http") + path}, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.HTTP.Listener.Addr().String() }

// Close shuts the hub down (clients see 1001; ten seconds at most), then
// the HTTP server; it returns the hub's error. It is safe to call more
// than once, and from any goroutine.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.err = s.Hub.Shutdown(ctx)
		s.HTTP.CloseClientConnections()
		s.HTTP.Close()
	})
	return s.err
}
