package hub

import (
	"errors"
	"fmt"

	"github.com/ginws/ginws/validate"
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

// Error codes of the wire protocol (PROTOCOL.md section 2).
const (
	CodeBadRequest       = "bad_request"
	CodeUnknownType      = "unknown_type"
	CodeValidationFailed = "validation_failed"
	CodeForbidden        = "forbidden"
	CodeNotMember        = "not_member"
	CodeRateLimited      = "rate_limited"
	CodeTooLarge         = "too_large"
	CodeUnsupported      = "unsupported"
	CodeInternal         = "internal"
	CodeTooManyRooms     = "too_many_rooms"
)

// Error is an error a client receives as an error frame. Handlers return
// one (or wrap one) to choose the code; any other error reaches the client
// as internal, and its text goes to the error hook only.
type Error struct {
	Code    string                `json:"code"`
	Message string                `json:"message"`
	Fields  []validate.FieldError `json:"fields,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("hub: %s: %s", e.Code, e.Message) }

// Is matches two *Error values by code, so errors.Is(err, hub.ErrForbidden)
// holds for any forbidden error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errors with the protocol's codes, for handlers to return.
var (
	ErrForbidden = &Error{Code: CodeForbidden, Message: "not allowed"}
	ErrNotMember = &Error{Code: CodeNotMember, Message: "join the room first"}
	// ErrTooManyRooms answers a join beyond Options.MaxRooms.
	ErrTooManyRooms = &Error{Code: CodeTooManyRooms, Message: "this session is in too many rooms"}
)

// NewError returns an *Error with the given code and message.
func NewError(code, message string) *Error { return &Error{Code: code, Message: message} }

// Close codes the hub sends (PROTOCOL.md section 4).
const (
	CloseNormal       = 1000
	CloseGoingAway    = 1001
	CloseInvalidUTF8  = 1007
	ClosePolicy       = 1008
	CloseTooBig       = 1009
	CloseInternal     = 1011
	CloseSlowConsumer = 1013
	CloseTokenExpired = 4401
	CloseForbidden    = 4403
	CloseRateLimited  = 4429
)

// CloseError tells why a session ended; Session.Err returns one.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("hub: session closed with %d (%s)", e.Code, e.Reason)
}

// ErrSlowConsumer is reported to the error hook when a session's send queue
// overflows and it is closed with 1013.
var ErrSlowConsumer = errors.New("hub: send queue overflow, closing slow consumer")
