package hub

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ginws/ginws/validate"
	"github.com/ginws/ginws/wire"
)

// Context is what a handler gets: the session, its principal, the request,
// and a context.Context cancelled when the connection closes.
type Context struct {
	context.Context
	hub     *Hub
	session *Session
	id      string
	typ     string
	room    string
	// server: the request was made by the application (Hub.JoinUser).
	server bool
}

// Hub returns the hub, for deliveries: c.Hub().To(room).Emit(...).
func (c *Context) Hub() *Hub { return c.hub }

// Session returns the session that sent the frame.
func (c *Context) Session() *Session { return c.session }

// User returns the session's principal.
func (c *Context) User() Principal { return c.session.Principal() }

// RequestID returns the frame's id, empty when the client wants no answer.
func (c *Context) RequestID() string { return c.id }

// Type returns the frame's event type.
func (c *Context) Type() string { return c.typ }

// Room returns the frame's top-level room field (set for join, leave and
// presence; application requests carry their room inside data).
func (c *Context) Room() string { return c.room }

// HandlerFunc handles one event whose data decoded and validated into T.
// Its result is the ack's data (nil gives null). Returning an *Error sends
// that error code; any other error is logged and sent as internal.
type HandlerFunc[T any] func(c *Context, in T) (any, error)

// HandlerOption configures a handler at registration.
type HandlerOption func(*handler)

// RequireRole lets only principals with at least one of the roles call the
// handler; others get forbidden.
func RequireRole(roles ...string) HandlerOption {
	policy := Policy(func(c *Context) error {
		if c.User().HasRole(roles...) {
			return nil
		}
		return ErrForbidden
	})
	return func(h *handler) {
		h.roles = append(h.roles, roles...)
		policy(h)
	}
}

// Policy runs fn before the handler (and before validation); an error
// refuses the call (an *Error as is, anything else as forbidden).
// Several policies must all pass.
func Policy(fn func(c *Context) error) HandlerOption {
	return func(h *handler) { h.policies = append(h.policies, fn) }
}

type handler struct {
	call     func(c *Context, data []byte) (any, error)
	policies []func(c *Context) error
	input    reflect.Type
	roles    []string
}

var builtins = map[string]bool{"join": true, "leave": true, "presence": true, "ping": true, "refresh": true}

// Handle registers fn for events of type typ. Data is decoded into T and
// validated by the hub's validator before fn runs; failures answer
// bad_request, too_large or validation_failed with every failing field.
// Handlers of one session run one at a time, in the order the frames came.
//
// Handle panics if typ is not a valid event type, is a built-in (join,
// leave, presence, ping, refresh) or is already registered.
func Handle[T any](h *Hub, typ string, fn HandlerFunc[T], opts ...HandlerOption) {
	if !validName(typ, 64, false) || builtins[typ] {
		panic(fmt.Sprintf("hub: Handle: invalid or built-in event type %q", typ))
	}
	v := h.opts.Validator
	hd := handler{input: reflect.TypeFor[T](), call: func(c *Context, data []byte) (any, error) {
		in, err := validate.Decode[T](v, data)
		if err != nil {
			return nil, err
		}
		return fn(c, in)
	}}
	for _, o := range opts {
		o(&hd)
	}
	h.hmu.Lock()
	defer h.hmu.Unlock()
	if _, dup := h.handlers[typ]; dup {
		panic(fmt.Sprintf("hub: Handle: event type %q registered twice", typ))
	}
	h.handlers[typ] = hd
}

// DeclareEvent records that the application sends events of type typ with
// data of type T, so that the schema export (package schema) can describe
// them; it changes nothing at run time. It panics if typ is not a valid
// event type.
func DeclareEvent[T any](h *Hub, typ string, opts ...EventOption) {
	if !validName(typ, 64, false) {
		panic(fmt.Sprintf("hub: DeclareEvent: invalid event type %q", typ))
	}
	info := EventInfo{Type: typ, Data: reflect.TypeFor[T]()}
	for _, o := range opts {
		o(&info)
	}
	h.hmu.Lock()
	defer h.hmu.Unlock()
	h.events[typ] = info
}

// EventOption describes a declared event further.
type EventOption func(*EventInfo)

// Replaceable declares that the events are sent with Target.Latest: a
// client may miss values of a key, never its newest, and the events carry
// no offset.
func Replaceable() EventOption { return func(e *EventInfo) { e.Replaceable = true } }

// HandlerInfo describes a registered handler, for documentation.
type HandlerInfo struct {
	Type  string
	Input reflect.Type
	// Roles lists the roles of RequireRole options, if any.
	Roles []string
}

// EventInfo describes an event type declared with DeclareEvent.
type EventInfo struct {
	Type string
	Data reflect.Type
	// Replaceable: declared with the Replaceable option.
	Replaceable bool
}

// Handlers lists the registered handlers, sorted by type.
func (h *Hub) Handlers() []HandlerInfo {
	h.hmu.RLock()
	defer h.hmu.RUnlock()
	out := make([]HandlerInfo, 0, len(h.handlers))
	for typ, hd := range h.handlers {
		out = append(out, HandlerInfo{Type: typ, Input: hd.input, Roles: hd.roles})
	}
	slices.SortFunc(out, func(a, b HandlerInfo) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// Events lists the declared events, sorted by type.
func (h *Hub) Events() []EventInfo {
	h.hmu.RLock()
	defer h.hmu.RUnlock()
	out := make([]EventInfo, 0, len(h.events))
	for _, e := range h.events {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b EventInfo) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// Validator returns the hub's validator (Options.Validator or the default).
func (h *Hub) Validator() *validate.Validator { return h.opts.Validator }

// HandleBinary registers the handler of binary frames. Without one, binary
// frames are answered with unsupported. An error it returns is sent to the
// client as an error frame without id.
func (h *Hub) HandleBinary(fn func(c *Context, data []byte) error) {
	h.hmu.Lock()
	h.binary = fn
	h.hmu.Unlock()
}

// handle runs on the session's handler goroutine.
func (h *Hub) handle(s *Session, f incoming) {
	c := &Context{Context: s.Context(), hub: h, session: s, id: f.env.ID, typ: f.env.Type, room: f.env.Room, server: f.server}
	start, label := time.Now(), "binary"
	var code wire.Code
	if f.binary == nil {
		label = h.typeLabel(f.env.Type)
	}
	defer func() { h.obs.Handled(label, code, time.Since(start)) }()
	if f.binary != nil {
		h.hmu.RLock()
		bin := h.binary
		h.hmu.RUnlock()
		if _, err := h.safeCall(c, func() (any, error) { return nil, bin(c, f.binary) }); err != nil {
			code = h.answer(c, nil, err)
		}
		return
	}
	var (
		result any
		after  func()
		err    error
	)
	if s.inDebt() && f.env.Type != "join" && f.env.Type != "leave" {
		// The client asked for more output than its rate allows; the
		// frames were admitted before the answers were known. Joins
		// and leaves have a rate of their own (JoinRate): refusing a
		// client's rejoin after a reconnect would lose it the room.
		code = h.answer(c, nil, &Error{Code: wire.CodeRateLimited, Message: "slow down: earlier answers were large"})
		return
	}
	switch f.env.Type {
	case "ping":
		s.invalid.Store(0)
		reply, _ := encodeReply("pong", c.id, nil, nil)
		s.out.queueReply(reply)
		return
	case "join":
		if after, err = h.join(c, f.env.Data); err == nil {
			if after != nil {
				after()
			}
			return // join answered itself
		}
		if c.server {
			s.reportLater(fmt.Errorf("hub: join %q for the application: %w", c.room, err))
			return
		}
	case "leave":
		result, err = h.leaveRequest(c)
	case "presence":
		result, err = h.presence(c)
	case "refresh":
		// The Authenticator is the application's code.
		result, err = h.safeCall(c, func() (any, error) { return s.refresh(c, f.env.Data) })
	default:
		h.hmu.RLock()
		hd, ok := h.handlers[f.env.Type]
		h.hmu.RUnlock()
		if !ok {
			err = &Error{Code: wire.CodeUnknownType, Message: fmt.Sprintf("no handler for %q", f.env.Type)}
			break
		}
		result, err = h.safeCall(c, func() (any, error) {
			for _, p := range hd.policies {
				if err := p(c); err != nil {
					return nil, asForbidden(err)
				}
			}
			return hd.call(c, f.env.Data)
		})
	}
	code = h.answer(c, result, err)
	if after != nil {
		after()
	}
}

// typeLabel is typ for built-ins and registered handlers, else "unknown":
// clients must not be able to grow the set of metric labels.
func (h *Hub) typeLabel(typ string) string {
	if builtins[typ] {
		return typ
	}
	h.hmu.RLock()
	_, ok := h.handlers[typ]
	h.hmu.RUnlock()
	if ok {
		return typ
	}
	return "unknown"
}

// safeCall runs application code, turning a panic into an internal error so
// the hub and the connection survive it.
func (h *Hub) safeCall(c *Context, fn func() (any, error)) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.reportError(c.session, fmt.Errorf("hub: handler %q panicked: %v\n%s", c.typ, p, debug.Stack()))
			err = &Error{Code: wire.CodeInternal, Message: "internal error"}
		}
	}()
	return fn()
}

func asForbidden(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: wire.CodeForbidden, Message: err.Error()}
}

// answer sends the ack or the error for a handled frame and returns the
// error code ("" for an ack).
func (h *Hub) answer(c *Context, result any, err error) wire.Code {
	s := c.session
	if err == nil {
		s.invalid.Store(0)
		if c.id == "" {
			return ""
		}
		reply, encErr := encodeReply("ack", c.id, result, nil)
		if encErr != nil {
			h.reportError(s, fmt.Errorf("hub: encode result of %q: %w", c.typ, encErr))
			s.out.queueReply(encodeError(c.id, &Error{Code: wire.CodeInternal, Message: "internal error"}))
			return wire.CodeInternal
		}
		s.charge(len(reply))
		// The handler's goroutine is the session's own: a large answer
		// waits for the peer to read, like a replay, instead of
		// overflowing the queue.
		_ = s.out.enqueueWait(c, outgoing{data: reply, urgent: true})
		return ""
	}
	e := toClientError(h, c, err)
	h.sendError(s, c.id, e)
	return e.Code
}

// toClientError maps an error to what the client may see: validation
// errors keep their fields, *Error passes, anything else is internal.
func toClientError(h *Hub, c *Context, err error) *Error {
	var verr *validate.Error
	if errors.As(err, &verr) {
		return &Error{Code: verr.Code, Message: verr.Message, Fields: verr.Fields}
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	h.reportError(c.session, fmt.Errorf("hub: handler %q: %w", c.typ, err))
	return &Error{Code: wire.CodeInternal, Message: "internal error"}
}
