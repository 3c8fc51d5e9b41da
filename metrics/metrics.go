// Package metrics exposes a hub's activity as Prometheus metrics
// (github.com/prometheus/client_golang). It is a package of its own so that
// applications that do not use Prometheus do not carry the dependency.
//
//	m := metrics.New(metrics.Options{})
//	h := hub.New(hub.Options{Observer: m})
//	m.Watch(h)
//	r.GET("/ws", middleware.New(h, middleware.Options{Auth: auth, Observer: m}))
//	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{})))
//
// Metric names start with Options.Namespace (by default "ginws"). Labels
// carry event types that have handlers (others count as "unknown"), error
// codes and the close codes of the wire protocol (a code a peer sends that
// the protocol does not name counts as "other"), never user ids or room
// names, so their number stays bounded.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

// Options configures the metrics.
type Options struct {
	// Namespace prefixes every metric name. By default "ginws".
	Namespace string
	// Registerer receives the metrics. By default a new registry, which
	// Metrics.Registry returns.
	Registerer prometheus.Registerer
	// Buckets are the handler latency histogram's buckets, in seconds. By
	// default from 100 µs to 10 s.
	Buckets []float64
}

// Metrics implements hub.Observer and middleware.Observer on Prometheus
// collectors. It is safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	registerer prometheus.Registerer
	namespace  string

	connsOpen    prometheus.Gauge
	connsTotal   prometheus.Counter
	closes       *prometheus.CounterVec
	refusals     *prometheus.CounterVec
	messagesIn   *prometheus.CounterVec
	errors       *prometheus.CounterVec
	handlerTime  *prometheus.HistogramVec
	messagesOut  *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	rateLimited  prometheus.Counter
	slowConsumer prometheus.Counter
	publishTime  prometheus.Histogram
	publishErr   prometheus.Counter
}

var (
	_ hub.Observer        = (*Metrics)(nil)
	_ middleware.Observer = (*Metrics)(nil)
)

// New creates and registers the metrics. It panics if they cannot be
// registered (a name already taken), as prometheus.MustRegister does.
func New(o Options) *Metrics {
	if o.Namespace == "" {
		o.Namespace = "ginws"
	}
	if o.Buckets == nil {
		o.Buckets = prometheus.ExponentialBuckets(0.0001, 4, 9) // 100 µs .. 6.5 s
	}
	m := &Metrics{namespace: o.Namespace, registerer: o.Registerer}
	if m.registerer == nil {
		m.reg = prometheus.NewRegistry()
		m.registerer = m.reg
	}
	ns := o.Namespace
	m.connsOpen = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "connections_open", Help: "Open WebSocket sessions."})
	m.connsTotal = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "connections_total", Help: "Sessions opened."})
	m.closes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "closes_total", Help: "Sessions closed, by close code."}, []string{"code"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "refusals_total", Help: "Upgrades refused before the upgrade, by reason."}, []string{"reason"})
	m.messagesIn = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_in_total", Help: "Client frames, by event type."}, []string{"type"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "errors_total", Help: "Error replies, by event type and error code."}, []string{"type", "code"})
	m.handlerTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "handler_seconds", Help: "Time to handle a client frame, by event type.", Buckets: o.Buckets}, []string{"type"})
	m.messagesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_out_total", Help: "Events handed to this node's sessions, by event type (once per event, whatever the number of recipients)."}, []string{"type"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "deliveries_total", Help: "Events queued to sessions of this node, by event type."}, []string{"type"})
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rate_limited_total", Help: "Frames refused by the rate limit."})
	m.slowConsumer = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "slow_consumer_closes_total", Help: "Sessions closed with 1013 because their send queue overflowed."})
	m.publishTime = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "broker_publish_seconds", Help: "Time to publish to other nodes.", Buckets: o.Buckets})
	m.publishErr = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "broker_publish_errors_total", Help: "Publishes to other nodes that failed."})
	m.registerer.MustRegister(m.connsOpen, m.connsTotal, m.closes, m.refusals, m.messagesIn, m.errors, m.handlerTime,
		m.messagesOut, m.deliveries, m.rateLimited, m.slowConsumer, m.publishTime, m.publishErr)
	return m
}

// Registry returns the registry New created, or nil when Options.Registerer
// was given.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Watch adds gauges read from h at scrape time: rooms with members on this
// node. Call it once per hub.
func (m *Metrics) Watch(h *hub.Hub) {
	m.registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: m.namespace, Name: "rooms", Help: "Rooms with at least one member on this node.",
	}, func() float64 { return float64(h.Rooms()) }))
}

// SessionOpened implements hub.Observer.
func (m *Metrics) SessionOpened() {
	m.connsOpen.Inc()
	m.connsTotal.Inc()
}

// SessionClosed implements hub.Observer. Codes the protocol does not name
// (wire.StatusCode.Known) count as "other": the hub passes on whatever code
// a peer closes with, and a label value per code would let clients create
// series at will.
func (m *Metrics) SessionClosed(code wire.StatusCode) {
	m.connsOpen.Dec()
	label := "other"
	if code.Known() {
		label = code.String()
	}
	m.closes.WithLabelValues(label).Inc()
}

// Handled implements hub.Observer.
func (m *Metrics) Handled(typ string, code wire.Code, d time.Duration) {
	m.messagesIn.WithLabelValues(typ).Inc()
	if code != "" {
		m.errors.WithLabelValues(typ, string(code)).Inc()
	}
	if d > 0 {
		m.handlerTime.WithLabelValues(typ).Observe(d.Seconds())
	}
}

// Emitted implements hub.Observer.
func (m *Metrics) Emitted(typ string, recipients int) {
	m.messagesOut.WithLabelValues(typ).Inc()
	m.deliveries.WithLabelValues(typ).Add(float64(recipients))
}

// RateLimited implements hub.Observer.
func (m *Metrics) RateLimited() { m.rateLimited.Inc() }

// SlowConsumer implements hub.Observer.
func (m *Metrics) SlowConsumer() { m.slowConsumer.Inc() }

// Published implements hub.Observer.
func (m *Metrics) Published(d time.Duration, err error) {
	m.publishTime.Observe(d.Seconds())
	if err != nil {
		m.publishErr.Inc()
	}
}

// Refused implements middleware.Observer.
func (m *Metrics) Refused(code wire.Code) { m.refusals.WithLabelValues(string(code)).Inc() }
