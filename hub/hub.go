package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
	"golang.org/x/time/rate"

	"github.com/ginws/ginws/internal/sock"
	"github.com/ginws/ginws/validate"
)

// Subprotocol is the WebSocket subprotocol of the ginws wire protocol.
const Subprotocol = "ginws.v1"

// ErrSlowConsumer is reported to the error hook when a session's send queue
// overflows and it is closed with 1013.
var ErrSlowConsumer = errors.New("hub: send queue overflow, closing slow consumer")

const (
	keyPrincipal = "ginws.principal"
	keyRelease   = "ginws.release"
	keySession   = "ginws.session"
)

// Hub owns the WebSocket sessions of an application: it routes their frames
// to handlers, keeps rooms and users, and delivers events. Create it with
// New, register handlers with Handle, serve connections with Accept (or the
// middleware package) and stop it with Shutdown. All methods are safe for
// concurrent use.
type Hub struct {
	opts    Options
	m       *melody.Melody
	broker  Broker
	history History
	obs     Observer
	log     *slog.Logger

	hmu      sync.RWMutex
	handlers map[string]handler
	events   map[string]reflect.Type
	binary   func(c *Context, data []byte) error

	mu       sync.RWMutex
	closed   bool
	sessions map[*Session]struct{}
	users    map[string]map[*Session]struct{}
	slots    map[string]int // sessions per user, counting those upgrading
	reserved int            // sessions, counting those upgrading
	rooms    map[string]*room

	writers   *writers
	presences *presence

	live    counter // sessions not yet cleaned up
	running counter // handler goroutines
	once    sync.Once
}

// New returns a hub configured by opts (zero fields take the defaults
// documented on Options).
func New(opts Options) *Hub {
	opts = opts.withDefaults()
	h := &Hub{
		opts:     opts,
		log:      opts.Logger,
		handlers: make(map[string]handler),
		events:   make(map[string]reflect.Type),
		sessions: make(map[*Session]struct{}),
		users:    make(map[string]map[*Session]struct{}),
		slots:    make(map[string]int),
		rooms:    make(map[string]*room),
		writers:  newWriters(opts.Writers),
	}
	h.presences = newPresence(h)
	h.broker = opts.Broker
	if h.broker == nil {
		h.broker = NewMemoryBus().Broker()
	}
	h.obs = opts.Observer
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	if hist, ok := h.broker.(History); ok {
		h.history = hist
	} else {
		h.history = newMemoryHistory(h.deliver, h.opts.HistoryBytes)
	}
	if err := h.broker.Start(h.deliver, func(err error) { h.reportError(nil, err) }); err != nil {
		h.reportError(nil, fmt.Errorf("hub: start broker: %w", err))
	}

	// melody upgrades the connection and runs its read loop; the hub
	// writes. What melody cannot do, and how the hub does without it:
	//   - its writer goroutine writes one frame per message and waits for
	//     the peer, so the hub writes through its own queues and writers
	//     (session.go, writers.go) and never calls melody's Write; melody's
	//     writer would also send Pings, so PingPeriod is out of reach and
	//     the hub sends its own;
	//   - its write deadlines (WriteWait, the upgrader's HandshakeTimeout)
	//     do not apply: the connection's writes never wait (internal/sock),
	//     so they are left unset;
	//   - it has no hook for Pings, so the hub sets gorilla's ping handler
	//     on the connection in onConnect.
	m := melody.New()
	m.Config.MaxMessageSize = opts.MaxFrameBytes
	m.Config.PongWait = opts.HeartbeatTimeout
	m.Config.PingPeriod = 1 << 62
	m.Config.MessageBufferSize = 1 // the channel melody's writer reads, which stays empty
	m.Upgrader = &websocket.Upgrader{
		// Small: most frames are small JSON, and every idle connection
		// keeps this buffer; larger frames take a few more reads.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{Subprotocol},
		// The origin is checked before Accept (see Accept).
		CheckOrigin: func(*http.Request) bool { return true },
	}
	m.HandleConnect(h.onConnect)
	m.HandleDisconnect(h.onDisconnect)
	m.HandleMessage(h.onText)
	m.HandleMessageBinary(h.onBinary)
	m.HandlePong(func(ms *melody.Session) {
		if s := sessionOf(ms); s != nil {
			s.touch()
			// Unsolicited Pongs are frames like any other: a flood of
			// them is cut off.
			if !s.isClosing() {
				h.allow(s, "", false)
			}
		}
	})
	m.HandleClose(func(ms *melody.Session, code int, _ string) error {
		if s := sessionOf(ms); s != nil {
			s.onPeerClose(code)
		}
		return nil
	})
	m.HandleError(func(ms *melody.Session, err error) {
		if isExpectedClose(err) {
			return
		}
		h.log.Debug("ginws: connection error", "session", sessionID(ms), "err", err)
	})
	h.m = m
	return h
}

func isExpectedClose(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) || errors.Is(err, melody.ErrSessionClosed) || errors.Is(err, melody.ErrWriteClosed)
}

// reserve takes one of the user's MaxSessionsPerUser slots, on this node
// and, when the broker counts sessions, on all of them.
func (h *Hub) reserve(ctx context.Context, user string) (release func(), err error) {
	max := h.opts.MaxSessionsPerUser
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	if max > 0 && h.slots[user] >= max {
		h.mu.Unlock()
		return nil, ErrTooManySessions
	}
	if h.opts.MaxSessions > 0 && h.reserved >= h.opts.MaxSessions {
		h.mu.Unlock()
		return nil, ErrHubFull
	}
	h.slots[user]++
	h.reserved++
	h.live.add(1)
	h.mu.Unlock()
	local := func() {
		h.mu.Lock()
		if h.slots[user]--; h.slots[user] <= 0 {
			delete(h.slots, user)
			if len(h.slots) == 0 {
				h.slots = make(map[string]int)
			}
		}
		h.reserved--
		h.mu.Unlock()
		h.live.add(-1)
	}
	sc, ok := h.broker.(SessionCounter)
	if !ok || max <= 0 {
		return sync.OnceFunc(local), nil
	}
	remote, err := sc.AcquireSession(ctx, user, max)
	if err != nil {
		local()
		if errors.Is(err, ErrTooManySessions) {
			return nil, err
		}
		return nil, fmt.Errorf("hub: count sessions across nodes: %w", err)
	}
	return sync.OnceFunc(func() { remote(); local() }), nil
}

// Health returns nil while the hub accepts sessions and its broker reaches
// the other nodes; ErrHubClosed during shutdown, or the broker's error.
func (h *Hub) Health(ctx context.Context) error {
	if !h.Accepting() {
		return ErrHubClosed
	}
	if hc, ok := h.broker.(HealthChecker); ok {
		return hc.Health(ctx)
	}
	return nil
}

// Accepting reports whether the hub takes new sessions (false once Shutdown
// has begun). Health checks use it.
func (h *Hub) Accepting() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return !h.closed
}

func sessionOf(ms *melody.Session) *Session {
	v, _ := ms.Get(keySession)
	s, _ := v.(*Session)
	return s
}

func sessionID(ms *melody.Session) string {
	if s := sessionOf(ms); s != nil {
		return s.id
	}
	return ""
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *Hub) onConnect(ms *melody.Session) {
	p, _ := ms.Keys[keyPrincipal].(Principal)
	release, _ := ms.Keys[keyRelease].(func())
	s := &Session{
		hub:       h,
		conn:      ms.WebsocketConnection(),
		socket:    ms.WebsocketConnection().NetConn().(*sock.Conn),
		id:        newID(),
		principal: p,
		release:   release,
		writing:   true, // held until open
	}
	ms.Set(keySession, s)
	s.socket.Own(s.requeue, s.writeFailed)
	s.conn.SetPingHandler(s.onPing)
	welcome, _ := eventFrame("welcome", "", struct {
		Session   string `json:"session"`
		User      string `json:"user"`
		Heartbeat int64  `json:"heartbeat"`
	}{s.id, p.UserID, h.opts.PingInterval.Milliseconds()})
	_ = s.enqueue(outFrame{data: welcome, urgent: true})

	h.mu.Lock()
	h.sessions[s] = struct{}{}
	if h.users[p.UserID] == nil {
		h.users[p.UserID] = make(map[*Session]struct{})
	}
	h.users[p.UserID][s] = struct{}{}
	closed := h.closed
	h.mu.Unlock()

	if closed {
		s.refuse(CloseGoingAway, "going_away")
		return
	}
	if h.opts.OnConnect != nil {
		if err := h.opts.OnConnect(s); err != nil {
			h.log.Info("ginws: session refused", "session", s.id, "user", p.UserID, "err", err)
			s.refuse(CloseForbidden, "forbidden")
			return
		}
	}
	s.open()
	s.pingTimer = time.AfterFunc(h.opts.PingInterval, s.ping)
	if !p.Expires.IsZero() {
		s.expiry = time.AfterFunc(time.Until(p.Expires), func() {
			s.Close(CloseTokenExpired, "token_expired")
		})
	}
	h.obs.SessionOpened()
	h.log.Debug("ginws: session open", "session", s.id, "user", p.UserID)
}

// onDisconnect runs once per session, after melody's reader returned and the
// connection is closed.
func (h *Hub) onDisconnect(ms *melody.Session) {
	s := sessionOf(ms)
	if s == nil {
		return
	}
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.mu.Lock()
	s.state = gone
	if s.cancel != nil {
		s.cancel()
	}
	if s.closeErr == nil {
		s.closeErr = &CloseError{Code: websocket.CloseAbnormalClosure, Reason: "connection_lost"}
	}
	s.dropQueueLocked()
	s.mu.Unlock()

	h.mu.Lock()
	delete(h.sessions, s)
	if us := h.users[s.principal.UserID]; us != nil {
		delete(us, s)
		if len(us) == 0 {
			delete(h.users, s.principal.UserID)
		}
	}
	if len(h.sessions) == 0 {
		// Maps keep their peak size: once everyone has gone, new ones.
		h.sessions = make(map[*Session]struct{})
		h.users = make(map[string]map[*Session]struct{})
	}
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	for _, r := range rooms {
		h.leave(s, r)
	}
	if h.opts.OnDisconnect != nil {
		h.opts.OnDisconnect(s)
	}
	h.obs.SessionClosed(s.closeErr.Code)
	h.log.Debug("ginws: session closed", "session", s.id, "user", s.principal.UserID, "reason", s.closeErr.Reason)
	if s.release != nil {
		s.release()
	}
}

// onText runs on the session's reader goroutine for each text frame.
func (h *Hub) onText(ms *melody.Session, data []byte) {
	s := sessionOf(ms)
	if s == nil {
		return
	}
	s.touch()
	if s.isClosing() {
		return
	}
	if !utf8.Valid(data) {
		s.Close(CloseInvalidUTF8, "invalid_utf8")
		return
	}
	if len(data) == 4 && string(data) == "ping" {
		if h.allow(s, "", true) {
			_ = s.enqueue(outFrame{data: []byte("pong"), raw: true, urgent: true})
		}
		return
	}
	if h.opts.MaxDepth > 0 && validate.TooDeep(data, h.opts.MaxDepth) {
		if h.allow(s, "", true) {
			h.obs.Handled("invalid", CodeBadRequest, 0)
			h.fail(s, "", &Error{Code: CodeBadRequest, Message: fmt.Sprintf("frame nests deeper than %d levels", h.opts.MaxDepth)})
		}
		return
	}
	// The envelope is read before the rate limit so that a rate_limited
	// reply carries the request's id and the client can fail that request.
	env, e := decodeEnvelope(data)
	if !h.allow(s, env.ID, true) {
		return
	}
	if e != nil {
		h.obs.Handled("invalid", e.Code, 0)
		h.fail(s, env.ID, e)
		return
	}
	if !s.dispatch(inFrame{env: env, size: len(data)}) {
		h.fail(s, env.ID, &Error{Code: CodeRateLimited, Message: "too many requests waiting"})
	}
}

func (h *Hub) onBinary(ms *melody.Session, data []byte) {
	s := sessionOf(ms)
	if s == nil {
		return
	}
	s.touch()
	if s.isClosing() || !h.allow(s, "", true) {
		return
	}
	h.hmu.RLock()
	bin := h.binary
	h.hmu.RUnlock()
	if bin == nil {
		h.fail(s, "", &Error{Code: CodeUnsupported, Message: "binary frames are not supported here"})
		return
	}
	if !s.dispatch(inFrame{binary: data, size: len(data)}) {
		h.fail(s, "", &Error{Code: CodeRateLimited, Message: "too many requests waiting"})
	}
}

// allow applies the rate limit: a frame over it gets rate_limited (reply is
// false for control frames, which get no answer), and RateLimitStrikes of
// those within a second close the session with 4429. A client a little over
// the rate is slowed down, a flood is cut off. It runs on the reader
// goroutine.
func (h *Hub) allow(s *Session, id string, reply bool) bool {
	if h.opts.RateLimit <= 0 {
		return true
	}
	if s.limiter == nil { // on the first frame: idle sessions need none
		s.limiter = rate.NewLimiter(rate.Limit(h.opts.RateLimit), h.opts.RateBurst)
	}
	if s.limiter.Allow() {
		return true
	}
	if now := time.Now(); now.Sub(s.strikesSince) > time.Second {
		s.strikesSince, s.strikes = now, 0
	}
	s.strikes++
	h.obs.RateLimited()
	if s.strikes >= h.opts.RateLimitStrikes {
		s.Close(CloseRateLimited, "rate_limited")
		return false
	}
	if reply {
		h.reply(s, replyError(id, &Error{Code: CodeRateLimited, Message: "slow down"}))
	}
	return false
}

// answerCost is the size of an answer that costs one token of the session's
// output budget: at the default rate a session's answers average at most
// 800 KiB/s, while rejoining a few rooms with a long replay each stays
// within the burst.
const answerCost = 16 << 10

// charge takes what an answer of n bytes costs from the session's output
// budget, a bucket of the rate limit's size of its own, going into debt if
// need be: the client's next requests are refused until it is paid. It runs
// on the session's handler goroutine.
func (s *Session) charge(n int) {
	o := &s.hub.opts
	tokens := n / answerCost
	if tokens == 0 || o.RateLimit <= 0 {
		return
	}
	if s.output == nil {
		s.output = rate.NewLimiter(rate.Limit(o.RateLimit), o.RateBurst)
	}
	s.output.ReserveN(time.Now(), min(tokens, o.RateBurst))
}

// inDebt reports whether large answers took more than the output budget
// holds. It runs on the session's handler goroutine.
func (s *Session) inDebt() bool {
	return s.output != nil && s.output.Tokens() < 0
}

// fail answers an invalid frame and closes the session with 1008 after
// MaxInvalidFrames of them in a row.
func (h *Hub) fail(s *Session, id string, e *Error) {
	h.reply(s, replyError(id, e))
	if !invalidFrame[e.Code] {
		// A refusal (forbidden, not_member, too_many_rooms, an
		// application's code) is an answer to a valid frame: a client
		// that gets twenty in a row is not broken, and 1008 would tell
		// it never to reconnect.
		return
	}
	if int(s.invalid.Add(1)) >= h.opts.MaxInvalidFrames {
		s.Close(ClosePolicy, "too_many_errors")
	}
}

// invalidFrame holds the error codes of frames that break the protocol or
// the handler's schema: MaxInvalidFrames of them in a row close the session.
var invalidFrame = map[string]bool{
	CodeBadRequest: true, CodeUnknownType: true, CodeValidationFailed: true, CodeTooLarge: true, CodeUnsupported: true,
}

func replyError(id string, e *Error) []byte {
	b, _ := replyFrame("error", id, nil, e)
	return b
}

func (h *Hub) reply(s *Session, frame []byte) {
	_ = s.enqueue(outFrame{data: frame, urgent: true})
}

func (h *Hub) reportError(s *Session, err error) {
	if h.opts.OnError != nil {
		h.opts.OnError(s, err)
	}
	id := ""
	if s != nil {
		id = s.id
	}
	h.log.Warn("ginws: error", "session", id, "err", err)
}

// Shutdown stops the hub gracefully: Accept refuses new sessions
// (ErrHubClosed; the middleware answers 503), frames that arrive are
// ignored, the frames already received are handled, then every session is
// closed with 1001 once everything queued to it is written. It returns when
// every session is gone and every handler has returned, or ctx.Err() when
// ctx ends first (remaining connections are then cut). It is idempotent.
//
// net/http's Server.Shutdown does not wait for hijacked connections such as
// WebSockets; call Shutdown from Server.RegisterOnShutdown or after
// Server.Shutdown returns:
//
//	srv.RegisterOnShutdown(func() { _ = h.Shutdown(ctx) })
func (h *Hub) Shutdown(ctx context.Context) error {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		// Every member is about to go: changes still gathered would
		// reach sessions that are closing.
		h.presences.stop()
	})
	h.mu.RLock()
	for s := range h.sessions {
		s.Close(CloseGoingAway, "going_away")
	}
	h.mu.RUnlock()
	if err := h.live.wait(ctx); err != nil {
		h.cutAll()
		return err
	}
	// The connections are closed: writers and flushers stop at once.
	if err := h.writers.active.wait(ctx); err != nil {
		return err
	}
	if err := h.running.wait(ctx); err != nil {
		return err
	}
	return h.broker.Close()
}

func (h *Hub) cutAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.sessions {
		s.conn.Close()
	}
}

// Len returns the number of open sessions on this node.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.sessions)
}

// UserSessions returns the number of open sessions of a user on this node.
func (h *Hub) UserSessions(user string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[user])
}
