package validate

import (
	"errors"
	"strings"

	"github.com/ginws/ginws/wire"
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

// Error is the one error type Decode returns. Use errors.As to get it and
// errors.Is with the sentinels above to test its cause.
type Error struct {
	// Code maps the error to the wire protocol's error code:
	// wire.CodeBadRequest, wire.CodeTooLarge or wire.CodeValidationFailed.
	Code wire.Code
	// Message is a readable summary, safe to show to the client.
	Message string
	// Fields lists every failing field; for wire.CodeBadRequest it holds
	// the field of a type mismatch or unknown field when one is known.
	Fields []wire.FieldError
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
