// Package wire names the vocabulary of the ginws protocol (docs/PROTOCOL.md):
// the subprotocol, the error codes of error frames and refused upgrades,
// the close codes with the reasons the server gives, and the errors of error
// frames and close frames. The hub, the middleware, validate, metrics, the Go client and
// the tests all use these names, so that each is written once.
package wire

import (
	"fmt"
	"strconv"
)

// Subprotocol is the WebSocket subprotocol of version 1 of the protocol.
const Subprotocol = "ginws.v1"

// Code is an error code: of an error frame (section 2) or of an upgrade
// refused before it happened (section 1). Applications may use codes of
// their own.
type Code string

// The protocol's error codes.
const (
	CodeBadRequest       Code = "bad_request"       // not JSON, not an object, a bad envelope or payload
	CodeUnknownType      Code = "unknown_type"      // no handler for the type
	CodeValidationFailed Code = "validation_failed" // the data broke the handler's rules; Fields says which
	CodeForbidden        Code = "forbidden"         // a role, policy or join policy refused
	CodeNotMember        Code = "not_member"        // the request needs the room joined first
	CodeRateLimited      Code = "rate_limited"      // slow down
	CodeTooLarge         Code = "too_large"         // the frame or payload is over the size limit
	CodeUnsupported      Code = "unsupported"       // binary frames without a binary handler
	CodeInternal         Code = "internal"          // the server failed; details went to its log
	CodeTooManyRooms     Code = "too_many_rooms"    // a join beyond the per-session room limit
	CodeUnauthorized     Code = "unauthorized"      // no valid token (upgrade, or a refresh)

	// Refusals of the upgrade only (HTTP status in PROTOCOL.md section 1).
	CodeForbiddenOrigin    Code = "forbidden_origin"
	CodeTooManyConnections Code = "too_many_connections"
	CodeUnavailable        Code = "unavailable"
)

// StatusCode is a WebSocket close code (PROTOCOL.md section 4).
type StatusCode int

// The close codes of the protocol, and those a peer or the network may
// cause (1005, 1006).
const (
	CloseNormal        StatusCode = 1000
	CloseGoingAway     StatusCode = 1001
	CloseProtocolError StatusCode = 1002
	CloseNoStatus      StatusCode = 1005 // the peer's close frame had no code
	CloseAbnormal      StatusCode = 1006 // the connection ended without a close frame
	CloseInvalidUTF8   StatusCode = 1007
	ClosePolicy        StatusCode = 1008
	CloseTooBig        StatusCode = 1009
	CloseInternal      StatusCode = 1011
	CloseSlowConsumer  StatusCode = 1013
	CloseTokenExpired  StatusCode = 4401
	CloseForbidden     StatusCode = 4403
	CloseRateLimited   StatusCode = 4429
)

var reasons = map[StatusCode]string{
	CloseNormal:        "normal",
	CloseGoingAway:     "going_away",
	CloseProtocolError: "protocol_error",
	CloseNoStatus:      "no_status",
	CloseAbnormal:      "connection_lost",
	CloseInvalidUTF8:   "invalid_utf8",
	ClosePolicy:        "too_many_errors",
	CloseTooBig:        "too_big",
	CloseInternal:      "internal",
	CloseSlowConsumer:  "slow_consumer",
	CloseTokenExpired:  "token_expired",
	CloseForbidden:     "forbidden",
	CloseRateLimited:   "rate_limited",
}

// Reason returns the short snake_case reason the server sends with c, or ""
// for a code the protocol does not name.
func (c StatusCode) Reason() string { return reasons[c] }

// Known reports whether the protocol names c. Metrics fold other codes,
// which a client may choose freely, into one label.
func (c StatusCode) Known() bool {
	_, ok := reasons[c]
	return ok
}

// Terminal reports whether a client must not reconnect after c.
func (c StatusCode) Terminal() bool {
	switch c {
	case CloseNormal, CloseProtocolError, CloseInvalidUTF8, ClosePolicy, CloseTooBig, CloseForbidden:
		return true
	}
	return false
}

// String returns the code as a number.
func (c StatusCode) String() string { return strconv.Itoa(int(c)) }

// FieldError describes one failing field of a validation_failed error.
type FieldError struct {
	// Field is the JSON path as the client wrote it: json tag names, slice
	// indexes and map keys, e.g. "items[2].qty" or "meta[color]".
	Field string `json:"field"`
	// Rule is the failing rule ("max", "required", "type" for a value of the
	// wrong JSON type, "unknown" for an unknown field).
	Rule string `json:"rule"`
	// Param is the rule's parameter ("500" for max=500), empty if none.
	Param string `json:"param,omitempty"`
	// Message is a readable sentence naming the field.
	Message string `json:"message"`
}

// Error is the error of an error frame: what a handler returns to choose
// the code (hub.Error) and what a client receives (client.Error).
type Error struct {
	Code    Code         `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is matches two *Error values by code, so errors.Is(err, hub.ErrForbidden)
// holds for any forbidden error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CloseError is why a connection ended: the code and reason of the close
// frame.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("connection closed with %d (%s)", e.Code, e.Reason)
}
