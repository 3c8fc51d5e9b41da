package validate

import (
	"errors"
	"strings"
)

// Code is the error code a client sees, as listed in section 2 of the ginws
// wire protocol.
type Code string

// The codes an *Error carries.
const (
	// CodeBadRequest: the payload is not JSON, nests too deeply, has a value
	// of the wrong type or an unknown field.
	CodeBadRequest Code = "bad_request"
	// CodeTooLarge: the payload exceeds Options.MaxBytes.
	CodeTooLarge Code = "too_large"
	// CodeValidationFailed: the payload decoded but broke one or more rules.
	CodeValidationFailed Code = "validation_failed"
)

// Sentinels wrapped by *Error, for callers that test with errors.Is.
var (
	ErrTooLarge  = errors.New("validate: payload too large")
	ErrTooDeep   = errors.New("validate: payload nested too deeply")
	ErrMalformed = errors.New("validate: malformed JSON")
	ErrInvalid   = errors.New("validate: validation failed")
	// ErrRegisterAfterUse is returned by the Register methods once the
	// Validator has decoded a payload: validator/v10 is not safe to extend
	// while it validates.
	ErrRegisterAfterUse = errors.New("validate: rules must be registered before first use")
)

// FieldError describes one failing field. It marshals to the shape of a
// validation_failed entry in the wire protocol.
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

// Error is the one error type Decode returns. Use errors.As to get it and
// errors.Is with the sentinels above to test its cause.
type Error struct {
	// Code maps the error to the wire protocol's error code.
	Code Code
	// Message is a readable summary, safe to show to the client.
	Message string
	// Fields lists every failing field; for CodeBadRequest it holds the
	// field of a type mismatch or unknown field when one is known.
	Fields []FieldError
	err    error
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return "validate: " + e.Message
	}
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Message
	}
	return "validate: " + strings.Join(msgs, "; ")
}

// Unwrap returns the sentinel (and, for malformed JSON, the decoder's error).
func (e *Error) Unwrap() error { return e.err }
