package client

import (
	"errors"
	"fmt"
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

// FieldError is one failing field of a validation_failed error.
type FieldError struct {
	Field   string `json:"field"`
	Rule    string `json:"rule"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
}

// Error is an error frame the server answered a request with.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("client: %s: %s", e.Code, e.Message) }

// CloseError is why the server closed the connection.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: closed by server with %d (%s)", e.Code, e.Reason)
}

// Terminal reports whether a client must not reconnect after this close
// code (PROTOCOL.md section 4).
func Terminal(code int) bool {
	switch code {
	case 1000, 1002, 1007, 1008, 1009, 4403:
		return true
	}
	return false
}
