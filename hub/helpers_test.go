package hub_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
)

// serve starts a loopback server whose upgrade takes the principal from the
// query (?user=alice&roles=a,b&ttl=1s), standing in for the middleware.
func serve(t *testing.T, h *hub.Hub) string {
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
		if err := h.Accept(w, r, p); err != nil {
			code := http.StatusServiceUnavailable
			if errors.Is(err, hub.ErrTooManySessions) {
				code = http.StatusTooManyRequests
			}
			if !errors.Is(err, hub.ErrHubClosed) && !errors.Is(err, hub.ErrTooManySessions) {
				return // the upgrader answered already
			}
			http.Error(w, err.Error(), code)
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// shutdownOnCleanup stops the hub at the end of the test, bounded.
func shutdownOnCleanup(t *testing.T, h *hub.Hub) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		require.NoError(t, h.Shutdown(ctx))
	})
}

// dial connects as the user the query names (see serve).
func dial(t *testing.T, url, query string) *wstest.Client {
	t.Helper()
	return wstest.Dial(t, url+"?"+query, nil)
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, msg)
}
