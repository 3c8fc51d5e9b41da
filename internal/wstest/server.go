package wstest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
)

// Serve starts a loopback server whose upgrade takes the principal from the
// query (?user=alice&roles=a,b&ttl=1s), standing in for the middleware, and
// returns its ws:// URL. The hub is shut down (bounded) when the test ends.
func Serve(t testing.TB, h *hub.Hub) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, h.Shutdown(ctx))
		srv.CloseClientConnections()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}
