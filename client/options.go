package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Defaults of the wire protocol's back-off (PROTOCOL.md section 4) and of
// the client's queues.
const (
	DefaultBaseDelay      = 500 * time.Millisecond
	DefaultMaxDelay       = 30 * time.Second
	DefaultResetAfter     = 10 * time.Second
	DefaultRateLimitDelay = 5 * time.Second
	DefaultQueueSize      = 256
	DefaultRequestTimeout = 10 * time.Second
)

// Options configures a Client. URL and Token are required.
type Options struct {
	// URL is the WebSocket endpoint, ws:// or wss://.
	URL string
	// Token returns the token to connect with. It is asked again before
	// every reconnect, so an expired token (close 4401) is replaced.
	Token func(ctx context.Context) (string, error)
	// Header adds headers to the upgrade request (Authorization is set
	// from Token).
	Header http.Header
	// TLSConfig is used for wss:// URLs. By default the system's roots.
	TLSConfig *tls.Config
	// BaseDelay, MaxDelay and ResetAfter shape the reconnect back-off:
	// full jitter over BaseDelay·2^attempt capped at MaxDelay, the attempt
	// count reset after a connection stayed open ResetAfter. By default
	// 500 ms, 30 s and 10 s. After a 4429 close the delay is at least
	// RateLimitDelay (by default 5 s).
	BaseDelay, MaxDelay, ResetAfter, RateLimitDelay time.Duration
	// Rand returns a number in [0,1) for the jitter. By default math/rand;
	// tests inject their own.
	Rand func() float64
	// QueueSize bounds the requests waiting for a connection; beyond it
	// Request fails with ErrQueueFull. By default 256.
	QueueSize int
	// RequestTimeout bounds a Request whose context has no deadline. By
	// default 10 s.
	RequestTimeout time.Duration
	// OnState is called on every state change, with the error that caused
	// it (nil when connecting or open). It must not block.
	OnState func(State, error)
	// OnRecover is called after each re-join of a room with whether the
	// missed messages were replayed (false: reload the room's state).
	OnRecover func(room string, recovered bool)
	// Compression offers permessage-deflate. A server that enables it
	// (hub.Options.Compression) then sends large events compressed, and
	// the client compresses the frames it sends of 256 bytes or more. It
	// saves bandwidth on large JSON (dashboards, lists) for some CPU on
	// both ends; off by default.
	Compression bool
	// Logger receives the client's logs. By default slog.Default().
	Logger *slog.Logger
}

// compressMinSize is the size from which the client compresses a frame,
// the hub's default hub.Compression.MinSize.
const compressMinSize = 256

func (o Options) withDefaults() Options {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&o.BaseDelay, DefaultBaseDelay)
	set(&o.MaxDelay, DefaultMaxDelay)
	set(&o.ResetAfter, DefaultResetAfter)
	set(&o.RateLimitDelay, DefaultRateLimitDelay)
	set(&o.RequestTimeout, DefaultRequestTimeout)
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Backoff returns the delay before reconnect attempt n (0-based): a random
// duration in [0, min(max, base·2^n)), "full jitter". r is in [0,1).
func Backoff(n int, base, max time.Duration, r float64) time.Duration {
	d := max
	if n < 30 && base<<n < max && base<<n > 0 {
		d = base << n
	}
	return time.Duration(r * float64(d))
}
