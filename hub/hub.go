package hub

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/ginws/ginws/wire"
)

const (
	keyPrincipal = "ginws.principal"
	keyRefresh   = "ginws.refresh"
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
	history HistoryStore
	obs     Observer
	log     *slog.Logger

	hmu      sync.RWMutex
	handlers map[string]handler
	events   map[string]EventInfo
	binary   func(c *Context, data []byte) error

	mu       sync.RWMutex
	closed   bool
	sessions map[*Session]struct{}
	users    map[string]map[*Session]struct{}
	slots    map[string]int // sessions per user, counting those upgrading
	subs     *subscriptions
	reserved int // sessions, counting those upgrading
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
		events:   make(map[string]EventInfo),
		sessions: make(map[*Session]struct{}),
		users:    make(map[string]map[*Session]struct{}),
		slots:    make(map[string]int),
		subs:     newSubscriptions(),
		rooms:    make(map[string]*room),
	}
	h.writers = newWriters(&h.opts)
	h.presences = newPresence(h)
	h.broker = opts.Broker
	if h.broker == nil {
		h.broker = NewMemoryBus().Broker()
	}
	h.obs = opts.Observer
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	if hist, ok := h.broker.(HistoryStore); ok {
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
	//     (outbox.go, writers.go) and never calls melody's Write; melody's
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
		Subprotocols:    []string{wire.Subprotocol},
		// Accept offers the extension to gorilla only when the hub
		// takes it (internal/deflate), and inflates what the client
		// compressed before gorilla reads it.
		EnableCompression: opts.Compression.Enabled,
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
			s.onPeerClose(wire.StatusCode(code))
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
// (ErrHubClosed; the middleware answers 503 with Retry-After) and Health
// reports it, then every session is closed with 1001 once everything
// queued to it is written: at once, or spread over Options.DrainWindow. A
// closing session ignores the frames that arrive and handles those already
// received. It returns when
// every session is gone and every handler has returned, or ctx.Err() when
// ctx ends first (remaining connections are then cut). It is idempotent.
//
// net/http's Server.Shutdown does not wait for hijacked connections such as
// WebSockets, nor for the functions of Server.RegisterOnShutdown. Call
// Shutdown first, while the listener still answers health checks (which
// see the drain), then Server.Shutdown:
//
//	err := h.Shutdown(ctx)
//	err = errors.Join(err, srv.Shutdown(ctx))
func (h *Hub) Shutdown(ctx context.Context) error {
	first := false
	h.once.Do(func() {
		first = true
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		// Every member is about to go: changes still gathered would
		// reach sessions that are closing.
		h.presences.stop()
	})
	if first {
		h.drain(ctx)
	}
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

// drain closes every session with 1001, at once or spread over the drain
// window in random order. When ctx ends first, the rest are closed at once.
func (h *Hub) drain(ctx context.Context) {
	h.mu.RLock()
	sessions := make([]*Session, 0, len(h.sessions))
	for s := range h.sessions {
		sessions = append(sessions, s)
	}
	h.mu.RUnlock()
	window := h.opts.DrainWindow
	if deadline, ok := ctx.Deadline(); ok {
		window = min(window, time.Until(deadline)/2)
	}
	rand.Shuffle(len(sessions), func(i, j int) { sessions[i], sessions[j] = sessions[j], sessions[i] })
	start := time.Now()
	var wait *time.Timer
	for i, s := range sessions {
		if window > 0 {
			if d := time.Until(start.Add(window * time.Duration(i) / time.Duration(len(sessions)))); d > 0 {
				if wait == nil {
					wait = time.NewTimer(d)
					defer wait.Stop()
				} else {
					wait.Reset(d)
				}
				select {
				case <-wait.C:
				case <-ctx.Done():
					window = 0
				}
			}
		}
		s.closeWith(wire.CloseGoingAway)
	}
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
