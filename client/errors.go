package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ginws/ginws/wire"
)

// Sentinel errors.
var (
	// ErrClosed: Close was called, or the server closed for good.
	ErrClosed = errors.New("client: closed")
	// ErrQueueFull: too many requests wait for a connection.
	ErrQueueFull = errors.New("client: offline queue full")
	// ErrConnectionLost: the connection dropped after the request was
	// sent; the server may or may not have handled it.
	ErrConnectionLost = errors.New("client: connection lost before the answer")
	// ErrNotConnected: SendBinary while the client is not connected.
	ErrNotConnected = errors.New("client: not connected")
)

// Error is an error frame the server answered a request with.
type Error = wire.Error

// CloseError is why the server closed the connection.
type CloseError = wire.CloseError

// RefusedError is an upgrade the server refused with an HTTP status
// instead of switching protocols (401 for a bad token, 503 while a node
// drains or is at its limit, ...). The client reports it through OnState
// and State, and retries.
type RefusedError struct {
	Status int
	// RetryAfter is the server's Retry-After, 0 without one, at most
	// Options.MaxDelay. The client waits this long plus as much again in
	// jitter (at most MaxDelay in all) before the next attempt.
	RetryAfter time.Duration
	err        error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("client: refused with HTTP %d: %v", e.Status, e.err)
}

func (e *RefusedError) Unwrap() error { return e.err }

// refused makes a RefusedError of a failed upgrade's response. Retry-After
// is seconds or an HTTP date (RFC 9110 section 10.2.3), at most limit: a
// server cannot hold a client away for longer than its own back-off would.
func refused(resp *http.Response, err error, limit time.Duration) *RefusedError {
	e := &RefusedError{Status: resp.StatusCode, err: err}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if secs, perr := strconv.ParseUint(v, 10, 32); perr == nil {
		e.RetryAfter = time.Duration(secs) * time.Second
	} else if at, perr := http.ParseTime(v); perr == nil {
		e.RetryAfter = max(0, time.Until(at))
	}
	e.RetryAfter = min(e.RetryAfter, limit)
	return e
}
