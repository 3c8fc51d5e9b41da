package hub

import (
	"errors"

	"github.com/ginws/ginws/wire"
)

// Sentinel errors returned by the hub's API.
var (
	// ErrHubClosed: the hub is shutting down or shut down.
	ErrHubClosed = errors.New("hub: closed")
	// ErrTooManySessions: the user already has MaxSessionsPerUser sessions.
	ErrTooManySessions = errors.New("hub: too many sessions for this user")
	// ErrHubFull: the hub has MaxSessions sessions.
	ErrHubFull = errors.New("hub: at its session limit")
	// ErrSessionClosed: the session is closing or closed.
	ErrSessionClosed = errors.New("hub: session closed")
	// ErrBadName: an event type or room name breaks the protocol's rules.
	ErrBadName = errors.New("hub: invalid event type or room name")
	// ErrNoHistory: the room keeps no history.
	ErrNoHistory = errors.New("hub: no history")
)

// Error is an error a client receives as an error frame. Handlers return
// one (or wrap one) to choose the code; any other error reaches the client
// as internal, and its text goes to the error hook only.
type Error = wire.Error

// Errors with the protocol's codes, for handlers to return.
var (
	ErrForbidden = &Error{Code: wire.CodeForbidden, Message: "not allowed"}
	ErrNotMember = &Error{Code: wire.CodeNotMember, Message: "join the room first"}
	// ErrTooManyRooms answers a join beyond Options.MaxRooms.
	ErrTooManyRooms = &Error{Code: wire.CodeTooManyRooms, Message: "this session is in too many rooms"}
)

// NewError returns an *Error with the given code and message.
func NewError(code wire.Code, message string) *Error { return &Error{Code: code, Message: message} }

// CloseError tells why a session ended; Session.Err returns one.
type CloseError = wire.CloseError

// ErrSlowConsumer is reported to the error hook when a session's send queue
// overflows and it is closed with 1013.
var ErrSlowConsumer = errors.New("hub: send queue overflow, closing slow consumer")
