package client

import (
	"errors"
	"fmt"

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
)

// Error is an error frame the server answered a request with.
type Error struct {
	Code    wire.Code         `json:"code"`
	Message string            `json:"message"`
	Fields  []wire.FieldError `json:"fields,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("client: %s: %s", e.Code, e.Message) }

// CloseError is why the server closed the connection.
type CloseError struct {
	Code   wire.StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: closed by server with %d (%s)", e.Code, e.Reason)
}
