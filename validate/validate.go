package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/go-playground/validator/v10"

	"github.com/ginws/ginws/wire"
)

// Default limits, used when the matching Options field is zero.
const (
	DefaultMaxBytes = 64 << 10
	DefaultMaxDepth = 32
)

// Options configures a Validator. The zero value is ready to use.
type Options struct {
	// TagName is the struct tag holding the rules. By default "validate";
	// set "binding" to share request structs with Gin's ShouldBindJSON.
	// With Engine, the engine keeps its own tag name: set TagName to it
	// ("binding" for Gin's) so that the schema export reads the same tag.
	TagName string
	// MaxBytes limits the payload size. By default 65536 (64 KiB); a
	// negative value means no limit.
	MaxBytes int
	// MaxDepth limits the nesting of objects and arrays. By default 32; a
	// negative value means no limit (not advised for untrusted input).
	MaxDepth int
	// DisallowUnknownFields rejects objects with fields T does not have.
	// Off by default, as in encoding/json.
	DisallowUnknownFields bool
	// Engine is an existing validator to use instead of a new one, e.g.
	// Gin's binding.Validator.Engine(), so that its custom rules apply. The
	// Validator never changes the engine's settings; rules registered
	// through the Validator are registered on it.
	Engine *validator.Validate
	// Message, if set, gives the message for a failing rule: return "" to
	// fall back to the built-in English messages. field is the JSON path.
	// Use it for custom rules or another language (a universal-translator
	// translator can be called from here).
	Message func(fe validator.FieldError, field string) string
}

// Validator decodes and validates JSON payloads. Build one with New and reuse
// it; it is safe for concurrent use.
type Validator struct {
	engine   *validator.Validate
	tag      string
	maxBytes int
	maxDepth int
	strict   bool
	message  func(validator.FieldError, string) string
	used     atomic.Bool
	mu       sync.Mutex // guards registration against a concurrent first use
	custom   sync.Map   // rule tag -> message template
	paths    sync.Map   // pathKey -> JSON path
}

// New returns a Validator configured by opts.
func New(opts Options) *Validator {
	v := &Validator{
		engine:   opts.Engine,
		tag:      orDefaultString(opts.TagName, "validate"),
		maxBytes: orDefault(opts.MaxBytes, DefaultMaxBytes),
		maxDepth: orDefault(opts.MaxDepth, DefaultMaxDepth),
		strict:   opts.DisallowUnknownFields,
		message:  opts.Message,
	}
	if v.engine == nil {
		v.engine = validator.New(validator.WithRequiredStructEnabled())
		if opts.TagName != "" {
			v.engine.SetTagName(opts.TagName)
		}
	}
	return v
}

func orDefaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TagName returns the struct tag that holds the rules.
func (v *Validator) TagName() string { return v.tag }

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// Engine returns the underlying validator/v10 instance.
func (v *Validator) Engine() *validator.Validate { return v.engine }

// RegisterRule adds a custom rule under tag with a message template in which
// {field} and {param} are replaced by the JSON path and the rule's
// parameter, e.g. "{field} must be a room name". It must be called before
// the first Decode and returns ErrRegisterAfterUse after it.
func (v *Validator) RegisterRule(tag string, fn validator.Func, message string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.used.Load() {
		return ErrRegisterAfterUse
	}
	if err := v.engine.RegisterValidation(tag, fn); err != nil {
		return fmt.Errorf("validate: register rule %q: %w", tag, err)
	}
	if message != "" {
		v.custom.Store(tag, message)
	}
	return nil
}

// RegisterStructRule adds a struct-level rule for the given types (see
// validator.Validate.RegisterStructValidation). Errors it reports through
// StructLevel.ReportError appear in Error.Fields like any other. It must be
// called before the first Decode.
func (v *Validator) RegisterStructRule(fn validator.StructLevelFunc, types ...any) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.used.Load() {
		return ErrRegisterAfterUse
	}
	v.engine.RegisterStructValidation(fn, types...)
	return nil
}

func (v *Validator) markUsed() {
	if !v.used.Load() {
		v.mu.Lock()
		v.used.Store(true)
		v.mu.Unlock()
	}
}

// Decode decodes data into a T and validates it. On failure it returns the
// zero T and an *Error. A nil or empty data decodes as JSON null, so a T
// whose fields are required fails validation rather than decoding.
func Decode[T any](v *Validator, data []byte) (T, error) {
	var out T
	if err := v.Into(data, &out); err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// Into decodes data into the value dst points to and validates it; Decode
// is its typed form. dst must be a non-nil pointer.
func (v *Validator) Into(data []byte, dst any) error {
	v.markUsed()
	if v.maxBytes > 0 && len(data) > v.maxBytes {
		return &Error{Code: wire.CodeTooLarge, err: ErrTooLarge,
			Message: fmt.Sprintf("payload is %d bytes, more than the limit of %d", len(data), v.maxBytes)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("null")
	}
	if v.maxDepth > 0 && TooDeep(data, v.maxDepth) {
		return &Error{Code: wire.CodeBadRequest, err: ErrTooDeep,
			Message: fmt.Sprintf("payload nests deeper than %d levels", v.maxDepth)}
	}
	if err := v.unmarshal(data, dst); err != nil {
		return decodeError(data, err)
	}
	return v.Struct(dst)
}

func (v *Validator) unmarshal(data []byte, dst any) error {
	if !v.strict {
		return json.Unmarshal(data, dst)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid character after top-level value")
	}
	return nil
}

// Struct runs the rules on an already decoded value (a struct or a pointer
// to one; other values pass). It returns nil or an *Error with
// wire.CodeValidationFailed.
func (v *Validator) Struct(x any) error {
	v.markUsed()
	rv := reflect.ValueOf(x)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	err := v.engine.Struct(rv.Interface())
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return &Error{Code: wire.CodeBadRequest, Message: "payload cannot be validated", err: err}
	}
	fields := make([]wire.FieldError, len(verrs))
	for i, fe := range verrs {
		path := v.jsonPath(rv.Type(), fe.StructNamespace())
		fields[i] = wire.FieldError{Field: path, Rule: fe.Tag(), Param: fe.Param(), Message: v.describe(fe, path)}
	}
	return &Error{Code: wire.CodeValidationFailed, Message: "validation failed", Fields: fields, err: ErrInvalid}
}

func (v *Validator) describe(fe validator.FieldError, path string) string {
	if v.message != nil {
		if m := v.message(fe, path); m != "" {
			return m
		}
	}
	if t, ok := v.custom.Load(fe.Tag()); ok {
		return expand(t.(string), path, fe.Param())
	}
	return message(fe, path)
}

// decodeError turns an encoding/json error into an *Error, naming the field
// when the decoder knows it.
func decodeError(data []byte, err error) *Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if p := pathAt(data, typeErr.Offset); field != "" && p != "" {
			field = p
		}
		if field == "" {
			return &Error{Code: wire.CodeBadRequest, err: errors.Join(ErrMalformed, err),
				Message: fmt.Sprintf("payload must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value)}
		}
		msg := fmt.Sprintf("%s must be %s, not %s", field, jsonKind(typeErr.Type), typeErr.Value)
		return &Error{Code: wire.CodeBadRequest, Message: msg, err: errors.Join(ErrMalformed, err),
			Fields: []wire.FieldError{{Field: field, Rule: "type", Param: typeErr.Type.String(), Message: msg}}}
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return &Error{Code: wire.CodeBadRequest, err: errors.Join(ErrMalformed, err),
			Message: fmt.Sprintf("payload is not valid JSON (at byte %d)", syntaxErr.Offset)}
	}
	if field, ok := unknownField(err); ok {
		msg := fmt.Sprintf("%s is not a known field", field)
		if field == "" {
			msg = `"" is not a known field`
		}
		return &Error{Code: wire.CodeBadRequest, Message: msg, err: errors.Join(ErrMalformed, err),
			Fields: []wire.FieldError{{Field: field, Rule: "unknown", Message: msg}}}
	}
	return &Error{Code: wire.CodeBadRequest, Message: "payload is not valid JSON", err: errors.Join(ErrMalformed, err)}
}

// unknownField extracts the name from encoding/json's `json: unknown field
// "x"` error, which has no type of its own.
func unknownField(err error) (string, bool) {
	var name string
	if _, scanErr := fmt.Sscanf(err.Error(), "json: unknown field %q", &name); scanErr != nil {
		return "", false
	}
	return name, true
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// TooDeep reports whether the JSON text nests objects and arrays deeper than
// max. It scans without allocating, so hostile input is refused before a
// decoder builds anything (encoding/json itself allows 10,000 levels). It
// does not check that data is valid JSON.
func TooDeep(data []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}
