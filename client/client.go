package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/wire"
)

// State is the connection state of a Client.
type State int

// The states a Client goes through.
const (
	StateConnecting State = iota
	StateOpen
	StateReconnecting
	StateClosed
)

func (s State) String() string {
	return [...]string{"connecting", "open", "reconnecting", "closed"}[s]
}

// Event is an event the server pushed.
type Event struct {
	Type string
	// Room is set for events sent to a room.
	Room string
	Data json.RawMessage
	// Offset is the event's place in its room's history, 0 when the room
	// keeps none.
	Offset uint64
}

// JoinResult is the server's answer to a join.
type JoinResult struct {
	Room      string `json:"room"`
	Members   int    `json:"members"`
	Epoch     string `json:"epoch"`
	Offset    uint64 `json:"offset"`
	Recovered bool   `json:"recovered"`
}

// Client is a ginws connection that stays up: it reconnects with back-off
// and jitter, keeps a heartbeat, re-joins its rooms with their last offsets
// and queues requests while offline. Its methods are safe for concurrent use.
type Client struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wmu    sync.Mutex     // one writer at a time, as gorilla requires
	tasks  sync.WaitGroup // the token refresh under way; Close waits for it
	// refreshing: one refresh at a time, however many notices come.
	refreshing atomic.Bool

	mu        sync.Mutex
	conn      *websocket.Conn
	state     State
	nextRetry time.Time
	session   string
	lastErr   error
	nextID    uint64
	pending   map[string]func(json.RawMessage, error)
	// sent: the pending requests written on the current connection, with
	// their frame when they are Repeatable (nil otherwise).
	sent      map[string][]byte
	queue     []queued
	rooms     map[string]*roomState
	handlers  map[string]map[uint64]func(Event)
	handlerID uint64
}

type queued struct {
	id     string
	frame  []byte
	repeat bool
}

type roomState struct {
	epoch  string
	offset uint64
	// acked: a join was acknowledged once, so reconnects join again; a
	// first join still in the offline queue goes out with the queue.
	acked bool
}

type frame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id,omitempty"`
	Room   string          `json:"room,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	Offset uint64          `json:"offset,omitempty"`
	Error  *Error          `json:"error,omitempty"`
	repeat bool            // Repeatable: not on the wire
}

// New starts a client that connects to opts.URL in the background and
// stays connected until Close or a terminal close code.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("client: Options.URL is required")
	}
	if opts.Token == nil {
		return nil, errors.New("client: Options.Token is required")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:     opts.withDefaults(),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		pending:  make(map[string]func(json.RawMessage, error)),
		sent:     make(map[string][]byte),
		rooms:    make(map[string]*roomState),
		handlers: make(map[string]map[uint64]func(Event)),
	}
	go c.run()
	return c, nil
}

// State returns the current state, the time of the next reconnect attempt
// (zero unless reconnecting) and the error that caused the last change.
func (c *Client) State() (State, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.nextRetry, c.lastErr
}

// Session returns the id of the current session, "" while disconnected.
func (c *Client) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Done is closed when the client stopped for good; State tells why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close stops the client: it closes the connection with 1000, fails waiting
// requests with ErrClosed and returns when its goroutines have exited.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		_ = conn.Close()
	}
	<-c.done
	c.tasks.Wait()
	return nil
}

func (c *Client) setState(s State, err error, retry time.Time) {
	c.mu.Lock()
	c.state, c.lastErr, c.nextRetry = s, err, retry
	c.mu.Unlock()
	if c.opts.OnState != nil {
		c.opts.OnState(s, err)
	}
}

func (c *Client) run() {
	defer close(c.done)
	attempt := 0
	for {
		conn, err := c.dial()
		var closeErr error
		if err == nil {
			opened := time.Now()
			closeErr = c.serve(conn)
			if time.Since(opened) >= c.opts.ResetAfter {
				attempt = 0
			}
		} else {
			closeErr = err
		}
		if c.ctx.Err() != nil {
			c.stop(ErrClosed)
			return
		}
		var ce *CloseError
		isClose := errors.As(closeErr, &ce)
		if isClose && ce.Code.Terminal() {
			c.stop(ce)
			return
		}
		delay := Backoff(attempt, c.opts.BaseDelay, c.opts.MaxDelay, c.opts.Rand())
		attempt++
		if isClose && ce.Code == wire.CloseRateLimited && delay < c.opts.RateLimitDelay {
			delay = c.opts.RateLimitDelay
		}
		// A node that asks for a pause (draining, full) gets it, and the
		// clients it refused together come back spread over as long again.
		if re := (*RefusedError)(nil); errors.As(closeErr, &re) && re.RetryAfter > 0 {
			delay = max(delay, min(c.opts.MaxDelay, re.RetryAfter+time.Duration(c.opts.Rand()*float64(re.RetryAfter))))
		}
		c.opts.Logger.Debug("ginws client: reconnecting", "in", delay, "err", closeErr)
		c.setState(StateReconnecting, closeErr, time.Now().Add(delay))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			c.stop(ErrClosed)
			return
		}
		c.setState(StateConnecting, nil, time.Time{})
	}
}

// stop ends the client: every waiting request fails with err.
func (c *Client) stop(err error) {
	c.mu.Lock()
	pending := c.pending
	c.pending = map[string]func(json.RawMessage, error){}
	c.queue = nil
	c.mu.Unlock()
	for _, p := range pending {
		p(nil, err)
	}
	c.cancel()
	c.setState(StateClosed, err, time.Time{})
}

func (c *Client) dial() (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	token, err := c.opts.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: token: %w", err)
	}
	header := http.Header{}
	for k, v := range c.opts.Header {
		header[k] = v
	}
	header.Set("Authorization", "Bearer "+token)
	d := websocket.Dialer{
		Subprotocols:      []string{wire.Subprotocol},
		TLSClientConfig:   c.opts.TLSConfig,
		HandshakeTimeout:  10 * time.Second,
		Proxy:             http.ProxyFromEnvironment,
		EnableCompression: c.opts.Compression,
	}
	conn, resp, err := d.DialContext(ctx, c.opts.URL, header)
	if err != nil {
		if resp != nil {
			return nil, refused(resp, err, c.opts.MaxDelay)
		}
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	return conn, nil
}

// serve runs one connection: welcome, re-join, queued requests, then reads
// until the connection ends, which it reports as a *CloseError when the
// server sent a close frame.
func (c *Client) serve(conn *websocket.Conn) error {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var welcome frame
	if err := conn.ReadJSON(&welcome); err != nil || welcome.Type != "welcome" {
		return closeErrorOf(fmt.Errorf("client: no welcome: %w", err))
	}
	var w struct {
		Session   string `json:"session"`
		Heartbeat int64  `json:"heartbeat"`
	}
	_ = json.Unmarshal(welcome.Data, &w)
	heartbeat := time.Duration(w.Heartbeat) * time.Millisecond
	if heartbeat <= 0 {
		heartbeat = 25 * time.Second
	}

	c.mu.Lock()
	c.conn, c.session = conn, w.Session
	c.mu.Unlock()
	c.setState(StateOpen, nil, time.Time{})
	c.rejoin()
	c.flush()

	stopHB := make(chan struct{})
	hbDone := make(chan struct{})
	var lastPong atomicTime
	lastPong.set(time.Now())
	go func() {
		defer close(hbDone)
		c.heartbeat(conn, heartbeat, &lastPong, stopHB)
	}()

	var err error
	for {
		// The heartbeat goroutine closes the connection when pongs stop.
		_ = conn.SetReadDeadline(time.Time{})
		var typ int
		var data []byte
		if typ, data, err = conn.ReadMessage(); err != nil {
			break
		}
		if typ == websocket.BinaryMessage {
			c.dispatch(binaryType, Event{Data: data})
			continue
		}
		c.receive(data, &lastPong)
	}
	close(stopHB)
	<-hbDone

	c.mu.Lock()
	c.conn, c.session = nil, ""
	var lost []func(json.RawMessage, error)
	var again []queued
	for id, frame := range c.sent {
		p, ok := c.pending[id]
		switch {
		case !ok:
		case frame != nil:
			again = append(again, queued{id: id, frame: frame, repeat: true})
		default:
			lost = append(lost, p)
			delete(c.pending, id)
		}
	}
	// Repeatable requests go again after the reconnect, first and in the
	// order they were made.
	slices.SortFunc(again, func(a, b queued) int {
		x, _ := strconv.ParseUint(a.id, 10, 64)
		y, _ := strconv.ParseUint(b.id, 10, 64)
		return cmp.Compare(x, y)
	})
	c.queue = append(again, c.queue...)
	c.sent = make(map[string][]byte)
	c.mu.Unlock()
	for _, p := range lost {
		p(nil, ErrConnectionLost)
	}
	return closeErrorOf(err)
}

func closeErrorOf(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: wire.StatusCode(ce.Code), Reason: ce.Text}
	}
	return err
}

// heartbeat sends a JSON ping every interval and closes the connection when
// no pong came for twice the interval (PROTOCOL.md section 4).
func (c *Client) heartbeat(conn *websocket.Conn, interval time.Duration, lastPong *atomicTime, stop chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if time.Since(lastPong.get()) > 2*interval {
				c.opts.Logger.Info("ginws client: heartbeat timed out")
				conn.Close()
				return
			}
			_ = c.write(conn, []byte(`{"type":"ping"}`))
		}
	}
}

func (c *Client) write(conn *websocket.Conn, data []byte) error {
	return c.writeMessage(conn, websocket.TextMessage, data)
}

func (c *Client) writeMessage(conn *websocket.Conn, typ int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	// Small frames gain little from compression and cost both ends CPU.
	conn.EnableWriteCompression(len(data) >= compressMinSize)
	return conn.WriteMessage(typ, data)
}

// receive handles one server frame, which may be an array of frames.
func (c *Client) receive(data []byte, lastPong *atomicTime) {
	var frames []frame
	if len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &frames); err != nil {
			c.opts.Logger.Warn("ginws client: bad frame", "err", err)
			return
		}
	} else {
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			if string(data) != "pong" {
				c.opts.Logger.Warn("ginws client: bad frame", "err", err)
			}
			return
		}
		frames = []frame{f}
	}
	for _, f := range frames {
		switch f.Type {
		case "pong":
			lastPong.set(time.Now())
			c.resolve(f.ID, nil, nil)
		case "ack":
			c.resolve(f.ID, f.Data, nil)
		case "error":
			if f.ID != "" {
				c.resolve(f.ID, nil, f.Error)
			} else if f.Error != nil {
				c.opts.Logger.Warn("ginws client: server error", "code", f.Error.Code, "message", f.Error.Message)
			}
		default:
			c.event(Event{Type: f.Type, Room: f.Room, Data: f.Data, Offset: f.Offset})
		}
	}
}

func (c *Client) resolve(id string, data json.RawMessage, e *Error) {
	if id == "" {
		return
	}
	c.mu.Lock()
	p := c.pending[id]
	delete(c.pending, id)
	delete(c.sent, id)
	c.mu.Unlock()
	if p == nil {
		return
	}
	if e != nil {
		p(nil, e)
		return
	}
	p(data, nil)
}

func (c *Client) event(ev Event) {
	if ev.Type == "token.expiring" && c.refreshing.CompareAndSwap(false, true) {
		c.tasks.Go(func() {
			defer c.refreshing.Store(false)
			c.refresh()
		})
	}
	if ev.Type == "room.joined" && ev.Room != "" {
		// The application joined this session to the room: it is joined
		// again after a reconnect, as if Join had been called.
		c.mu.Lock()
		if c.rooms[ev.Room] == nil {
			c.rooms[ev.Room] = &roomState{}
		}
		c.mu.Unlock()
		if _, err := c.joined(ev.Room, ev.Data); err != nil {
			c.opts.Logger.Warn("ginws client: room.joined", "room", ev.Room, "err", err)
		}
	}
	c.mu.Lock()
	if r := c.rooms[ev.Room]; r != nil && ev.Offset > r.offset {
		r.offset = ev.Offset
	}
	c.mu.Unlock()
	c.dispatch(ev.Type, ev)
}

// binaryType is where binary frames' handlers are kept among the events'
// (no event type is empty).
const binaryType = ""

// dispatch calls the handlers of typ with ev, outside the lock.
func (c *Client) dispatch(typ string, ev Event) {
	c.mu.Lock()
	fns := make([]func(Event), 0, len(c.handlers[typ]))
	for _, fn := range c.handlers[typ] {
		fns = append(fns, fn)
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// OnBinary registers fn for the binary frames the server sends
// (Target.EmitBinary, Session.EmitBinary); data is the frame's payload. fn
// runs on the client's reading goroutine: it must not block.
func (c *Client) OnBinary(fn func(data []byte)) (off func()) {
	return c.On(binaryType, func(ev Event) { fn(ev.Data) })
}

// SendBinary sends data as one binary frame, for the server's
// Hub.HandleBinary; the server answers nothing unless its handler does.
// While the client is not connected it fails with ErrNotConnected: unlike
// requests, binary frames are not queued.
func (c *Client) SendBinary(data []byte) error {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	if err := c.writeMessage(conn, websocket.BinaryMessage, data); err != nil {
		return fmt.Errorf("client: send binary: %w", err)
	}
	return nil
}

// On registers fn for events of type typ (all rooms; check Event.Room) and
// returns a function that removes it. Handlers run on the client's reader
// goroutine: keep them short.
func (c *Client) On(typ string, fn func(Event)) (off func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlerID++
	id := c.handlerID
	if c.handlers[typ] == nil {
		c.handlers[typ] = make(map[uint64]func(Event))
	}
	c.handlers[typ][id] = fn
	return func() {
		c.mu.Lock()
		delete(c.handlers[typ], id)
		c.mu.Unlock()
	}
}

// On registers a typed handler: the event's data is decoded into T. Events
// whose data does not decode are logged and skipped.
func On[T any](c *Client, typ string, fn func(ev Event, data T)) (off func()) {
	return c.On(typ, func(ev Event) {
		var v T
		if len(ev.Data) > 0 {
			if err := json.Unmarshal(ev.Data, &v); err != nil {
				c.opts.Logger.Warn("ginws client: event data does not decode", "type", typ, "err", err)
				return
			}
		}
		fn(ev, v)
	})
}

// Request sends an event with an id and waits for the server's ack,
// returning its data, or the *Error the server answered. While the client is
// offline the request waits in a bounded queue (ErrQueueFull beyond it). A
// context without deadline gets Options.RequestTimeout. When the connection
// drops after the request was sent, it fails with ErrConnectionLost, unless
// it is Repeatable.
func (c *Client) Request(ctx context.Context, typ string, data any, opts ...RequestOption) (json.RawMessage, error) {
	f := frame{Type: typ}
	for _, o := range opts {
		o(&f)
	}
	return c.request(ctx, f, data)
}

// RequestOption configures one Request.
type RequestOption func(*frame)

// Repeatable marks a request as safe to handle twice (it reads, or the
// server ignores a repeat): when the connection drops before its answer,
// it is sent again after the reconnect instead of failing with
// ErrConnectionLost.
func Repeatable() RequestOption { return func(f *frame) { f.repeat = true } }

func (c *Client) request(ctx context.Context, f frame, data any) (json.RawMessage, error) {
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("client: encode %s data: %w", f.Type, err)
		}
		f.Data = raw
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	type result struct {
		data json.RawMessage
		err  error
	}
	ch := make(chan result, 1)
	id, err := c.send(f, func(d json.RawMessage, err error) { ch <- result{d, err} })
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.data, r.err
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
}

// send registers the callback and writes the frame now, or queues it while
// offline.
func (c *Client) send(f frame, cb func(json.RawMessage, error)) (string, error) {
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return "", ErrClosed
	}
	c.nextID++
	f.ID = strconv.FormatUint(c.nextID, 10)
	raw, err := json.Marshal(f)
	if err != nil {
		c.mu.Unlock()
		return "", err
	}
	conn := c.conn
	if conn == nil {
		if len(c.queue) >= c.opts.QueueSize {
			c.mu.Unlock()
			return "", ErrQueueFull
		}
		c.queue = append(c.queue, queued{id: f.ID, frame: raw, repeat: f.repeat})
		c.pending[f.ID] = cb
		c.mu.Unlock()
		return f.ID, nil
	}
	c.pending[f.ID] = cb
	c.sent[f.ID] = repeatable(raw, f.repeat)
	c.mu.Unlock()
	// A failed write shows up as a read error too: serve then fails the
	// request with ErrConnectionLost.
	_ = c.write(conn, raw)
	return f.ID, nil
}

func (c *Client) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
	delete(c.sent, id)
	for i, q := range c.queue {
		if q.id == id {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
}

// repeatable is what c.sent keeps of a request: its frame, to send again,
// or nil.
func repeatable(frame []byte, repeat bool) []byte {
	if repeat {
		return frame
	}
	return nil
}

// flush writes the requests queued while offline, in order.
func (c *Client) flush() {
	c.mu.Lock()
	conn, queue := c.conn, c.queue
	c.queue = nil
	for _, q := range queue {
		c.sent[q.id] = repeatable(q.frame, q.repeat)
	}
	c.mu.Unlock()
	for _, q := range queue {
		if conn == nil || c.write(conn, q.frame) != nil {
			return
		}
	}
}

// Join joins a room and keeps it joined across reconnects, resuming from
// the last offset seen (PROTOCOL.md section 5).
func (c *Client) Join(ctx context.Context, room string) (JoinResult, error) {
	c.mu.Lock()
	if c.rooms[room] == nil {
		c.rooms[room] = &roomState{}
	}
	c.mu.Unlock()
	res, err := c.join(ctx, room)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			c.mu.Lock()
			delete(c.rooms, room)
			c.mu.Unlock()
		}
	}
	return res, err
}

func (c *Client) join(ctx context.Context, room string) (JoinResult, error) {
	raw, err := c.request(ctx, c.joinFrame(room), nil)
	if err != nil {
		return JoinResult{}, err
	}
	return c.joined(room, raw)
}

// joinFrame is a join with the room's last epoch and offset, if any.
func (c *Client) joinFrame(room string) frame {
	f := frame{Type: "join", Room: room}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rooms[room]; r != nil && r.epoch != "" {
		f.Data, _ = json.Marshal(map[string]any{"since": map[string]any{"epoch": r.epoch, "offset": r.offset}})
	}
	return f
}

// joined records a join ack. Replayed events came before it and moved the
// offset on; without recovery the client starts again from the ack's offset.
func (c *Client) joined(room string, raw json.RawMessage) (JoinResult, error) {
	var res JoinResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return JoinResult{}, fmt.Errorf("client: join ack: %w", err)
	}
	c.mu.Lock()
	if r := c.rooms[room]; r != nil {
		r.acked, r.epoch = true, res.Epoch
		if !res.Recovered || res.Offset > r.offset {
			r.offset = res.Offset
		}
	}
	c.mu.Unlock()
	return res, nil
}

// rejoin joins every room again after a reconnect, without waiting.
func (c *Client) rejoin() {
	c.mu.Lock()
	rooms := make([]string, 0, len(c.rooms))
	for name, r := range c.rooms {
		if r.acked {
			rooms = append(rooms, name)
		}
	}
	c.mu.Unlock()
	for _, room := range rooms {
		_, _ = c.send(c.joinFrame(room), func(raw json.RawMessage, err error) {
			var res JoinResult
			if err == nil {
				res, err = c.joined(room, raw)
			}
			if err != nil {
				c.opts.Logger.Warn("ginws client: re-join failed", "room", room, "err", err)
				return
			}
			if c.opts.OnRecover != nil {
				c.opts.OnRecover(room, res.Recovered)
			}
		})
	}
}

// Leave leaves a room; it is no longer re-joined after reconnects.
func (c *Client) Leave(ctx context.Context, room string) error {
	c.mu.Lock()
	delete(c.rooms, room)
	c.mu.Unlock()
	_, err := c.request(ctx, frame{Type: "leave", Room: room}, nil)
	return err
}

type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) set(t time.Time) { a.mu.Lock(); a.t = t; a.mu.Unlock() }
func (a *atomicTime) get() time.Time  { a.mu.Lock(); defer a.mu.Unlock(); return a.t }

// refresh sends the server a new token from Options.Token before the
// session's expires (PROTOCOL.md section 6). When it fails, the server
// closes with 4401 at the expiry and the client reconnects with a token
// it asks for then.
func (c *Client) refresh() {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
	defer cancel()
	token, err := c.opts.Token(ctx)
	if err == nil {
		_, err = c.Request(ctx, "refresh", struct {
			Token string `json:"token"`
		}{token})
	}
	if err != nil && c.ctx.Err() == nil {
		c.opts.Logger.Warn("ginws client: token refresh failed; reconnecting at the expiry", "err", err)
	}
}
