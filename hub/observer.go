package hub

import (
	"time"

	"github.com/ginws/ginws/wire"
)

// Observer receives the hub's events, for metrics (package metrics
// implements it on Prometheus). Its methods run on hot paths: they must be
// fast, must not block, must not call the hub and must be safe for
// concurrent use. Event types
// that have no handler are reported as "unknown", so that clients cannot
// grow the set of label values.
type Observer interface {
	// SessionOpened and SessionClosed bracket every session; code is the
	// close code (1006 when the connection was lost without one).
	SessionOpened()
	SessionClosed(code wire.StatusCode)
	// Handled reports one client frame of type typ answered with code
	// ("" for an ack or no answer) after d in the handler.
	Handled(typ string, code wire.Code, d time.Duration)
	// Emitted reports one event of type typ sent to recipients on this node.
	Emitted(typ string, recipients int)
	// RateLimited reports a frame refused by the rate limit; SlowConsumer a
	// session closed because its send queue overflowed.
	RateLimited()
	SlowConsumer()
	// Published reports a publish to other nodes through the broker.
	Published(d time.Duration, err error)
}

// nopObserver is the Observer of a hub without one.
type nopObserver struct{}

func (nopObserver) SessionOpened()                           {}
func (nopObserver) SessionClosed(wire.StatusCode)            {}
func (nopObserver) Handled(string, wire.Code, time.Duration) {}
func (nopObserver) Emitted(string, int)                      {}
func (nopObserver) RateLimited()                             {}
func (nopObserver) SlowConsumer()                            {}
func (nopObserver) Published(time.Duration, error)           {}
