package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/metrics"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

func TestMain(m *testing.M) { wstest.Main(m) }

type say struct {
	Room string `json:"room" validate:"required"`
	Text string `json:"text" validate:"required,max=5"`
}

func TestScriptedSession(t *testing.T) {
	m := metrics.New(metrics.Options{})
	h := hub.New(hub.Options{Observer: m, Logger: wstest.Quiet, RateLimit: 1, RateBurst: 3, RateLimitStrikes: 100})
	m.Watch(h)
	hub.Handle(h, "say", func(c *hub.Context, in say) (any, error) {
		return nil, c.Hub().To(in.Room).Emit("said", in.Text)
	})
	srv := wstest.StartApp(t, h, wstest.App{
		Middleware: middleware.Options{
			Auth:     middleware.AuthFunc(func(_ *gin.Context, tok string) (hub.Principal, error) { return hub.Principal{UserID: tok}, nil }),
			Observer: m,
		},
		Routes: func(r *gin.Engine, ws gin.HandlerFunc) {
			r.GET("/ws", ws)
			r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{})))
		},
	})

	// One refusal: a foreign origin.
	foreign := wstest.Bearer("alice")
	foreign.Set("Origin", "https://evil.example")
	assert.Equal(t, 403, wstest.Refuse(t, srv.URL, foreign).Status)

	a := wstest.Dial(t, srv.URL, wstest.Bearer("alice"))
	b := wstest.Dial(t, srv.URL, wstest.Bearer("bob"))
	a.Join("lobby", nil) // frame 1 of a's burst of 3
	b.Join("lobby", nil)
	assert.Equal(t, "ack", a.Request("say", "1", "", map[string]string{"room": "lobby", "text": "hi"}).Type)
	assert.Equal(t, "validation_failed", a.Request("say", "2", "", map[string]string{"room": "lobby", "text": "too long"}).Error.Code)
	assert.Equal(t, "rate_limited", a.Request("nope", "3", "", nil).Error.Code, "the 4th frame within a second")
	b.Send(`{"type":"no.such.type","id":"x"}`)
	assert.Equal(t, "unknown_type", b.ReadUntil("error").Error.Code)
	b.Send(`not json`)
	assert.Equal(t, "bad_request", b.ReadUntil("error").Error.Code)
	require.NoError(t, b.Conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "")))
	assert.Equal(t, 1000, b.ExpectClose())
	require.Eventually(t, func() bool { return h.Len() == 1 }, 5*time.Second, 5*time.Millisecond)

	// Scrape over HTTP, as Prometheus would.
	res, err := http.Get(srv.HTTP.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(body), "ginws_handler_seconds_bucket")

	require.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP ginws_connections_open Open WebSocket sessions.
# TYPE ginws_connections_open gauge
ginws_connections_open 1
# HELP ginws_connections_total Sessions opened.
# TYPE ginws_connections_total counter
ginws_connections_total 2
# HELP ginws_closes_total Sessions closed, by close code.
# TYPE ginws_closes_total counter
ginws_closes_total{code="1000"} 1
# HELP ginws_refusals_total Upgrades refused before the upgrade, by reason.
# TYPE ginws_refusals_total counter
ginws_refusals_total{reason="forbidden_origin"} 1
# HELP ginws_messages_in_total Client frames, by event type.
# TYPE ginws_messages_in_total counter
ginws_messages_in_total{type="invalid"} 1
ginws_messages_in_total{type="join"} 2
ginws_messages_in_total{type="say"} 2
ginws_messages_in_total{type="unknown"} 1
# HELP ginws_errors_total Error replies, by event type and error code.
# TYPE ginws_errors_total counter
ginws_errors_total{code="bad_request",type="invalid"} 1
ginws_errors_total{code="unknown_type",type="unknown"} 1
ginws_errors_total{code="validation_failed",type="say"} 1
# HELP ginws_rate_limited_total Frames refused by the rate limit.
# TYPE ginws_rate_limited_total counter
ginws_rate_limited_total 1
# HELP ginws_deliveries_total Events queued to sessions of this node, by event type.
# TYPE ginws_deliveries_total counter
ginws_deliveries_total{type="said"} 2
# HELP ginws_rooms Rooms with at least one member on this node.
# TYPE ginws_rooms gauge
ginws_rooms 1
`), "ginws_connections_open", "ginws_connections_total", "ginws_closes_total", "ginws_refusals_total",
		"ginws_messages_in_total", "ginws_errors_total", "ginws_rate_limited_total", "ginws_deliveries_total", "ginws_rooms"))

	a.Conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.Shutdown(ctx))
}

func TestCloseCodesOutsideTheProtocolFold(t *testing.T) {
	m := metrics.New(metrics.Options{})
	known := []int{1000, 1001, 1002, 1005, 1006, 1007, 1008, 1009, 1011, 1013, 4401, 4403, 4429}
	for _, code := range known {
		m.SessionOpened()
		m.SessionClosed(wire.StatusCode(code))
	}
	// What a peer may put in its close frame, and what it may not.
	for _, code := range []int{1003, 1010, 1012, 1014, 1015, 2999, 3000, 4000, 4402, 4999, 5000, 65535, 0, -1} {
		m.SessionOpened()
		m.SessionClosed(wire.StatusCode(code))
	}
	var want strings.Builder
	want.WriteString("# HELP ginws_closes_total Sessions closed, by close code.\n# TYPE ginws_closes_total counter\n")
	for _, code := range known {
		fmt.Fprintf(&want, "ginws_closes_total{code=\"%d\"} 1\n", code)
	}
	want.WriteString("ginws_closes_total{code=\"other\"} 14\n")
	require.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(want.String()), "ginws_closes_total"))
}
