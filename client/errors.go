package client

import (
	"errors"

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
type Error = wire.Error

// CloseError is why the server closed the connection.
type CloseError = wire.CloseError
