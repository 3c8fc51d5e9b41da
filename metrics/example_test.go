package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/metrics"
)

func ExampleNew() {
	m := metrics.New(metrics.Options{})
	h := hub.New(hub.Options{Observer: m})
	m.Watch(h)

	// Events to a room with no member on this node and to everyone, while
	// nobody is connected: each is counted once and delivered to no one.
	_ = h.To("lobby").Emit("chat.message", map[string]string{"text": "hi"})
	_ = h.To("lobby").Emit("chat.message", map[string]string{"text": "anyone?"})
	_ = h.All().Emit("notice", "maintenance at noon")

	// Scrape as Prometheus would; an application serves this handler on
	// /metrics (with gin.WrapH).
	scrape := httptest.NewRecorder()
	promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}).ServeHTTP(scrape, httptest.NewRequest("GET", "/metrics", nil))
	show := []string{"ginws_connections_open", "ginws_deliveries_total", "ginws_messages_out_total", "ginws_rooms"}
	for line := range strings.Lines(scrape.Body.String()) {
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if slices.Contains(show, name) {
			fmt.Print(line)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Shutdown(ctx)
	// Output:
	// ginws_connections_open 0
	// ginws_deliveries_total{type="chat.message"} 0
	// ginws_deliveries_total{type="notice"} 0
	// ginws_messages_out_total{type="chat.message"} 2
	// ginws_messages_out_total{type="notice"} 1
	// ginws_rooms 0
}
