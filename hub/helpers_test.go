package hub_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
)

// chatHub is a hub with the fixture events (wstest.NewHub), served by serve.
func chatHub(t *testing.T, opts hub.Options) (*hub.Hub, string) {
	t.Helper()
	h := wstest.NewHub(opts)
	return h, serve(t, h)
}

// serve starts a loopback server for h (see wstest.Serve) that shuts h
// down when the test ends.
func serve(t *testing.T, h *hub.Hub) string { return wstest.Serve(t, h) }

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
