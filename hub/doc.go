// Package hub owns the WebSocket sessions of a Gin (or any net/http)
// application: it routes each frame to a typed handler, answers with acks
// and errors, keeps rooms, users and presence, and delivers events to a
// session, a room, a user's sessions or everyone, on one node or, through a
// Broker, on many. It implements the server side of the ginws wire protocol
// (docs/PROTOCOL.md) on top of github.com/olahol/melody.
//
//	h := hub.New(hub.Options{})
//	hub.Handle(h, "chat.send", func(c *hub.Context, in SendChat) (any, error) {
//		return nil, c.Hub().To(in.Room).Emit("chat.message", in)
//	}, hub.RequireRole("member"))
//	r.GET("/ws", middleware.New(h, middleware.Options{Auth: auth}))
//
// # Handlers
//
// Handle is generic over the handler's input: the frame's data is decoded
// into it and validated with package validate (struct tags of
// go-playground/validator) before the handler runs, so handlers never see
// invalid input. A handler's result becomes the ack's data; an *Error it
// returns reaches the client with its code; other errors and panics reach
// the client as internal and the error hook with their detail. Handlers of
// one session run one at a time in the order the frames came, on a goroutine
// of their own, so a slow handler never delays reading (and thus the
// heartbeat). Their Context is cancelled when the connection closes.
//
// # Delivery
//
// h.To(room), h.ToUser(id) and h.All() address recipients; Except leaves the
// sender out; Emit encodes once and queues the same bytes to every
// recipient, in O(recipients). Sends never block: each session has a send
// queue bounded in bytes and frames. A few writer goroutines for the whole
// hub (Options.Writers) take the sessions with something queued in turn and
// write each one's queue with one system call that never waits for the peer,
// merging queued events into array frames; when they fall behind, each write
// carries more events. A peer that does not take what is written gets a
// goroutine of its own until it catches up, and one whose queue overflows
// meanwhile is closed with 1013 rather than losing messages silently.
// Answers to requests, and the welcome, are written by the goroutine that
// made them, not queued behind a broadcast; a large answer or a join's
// replay waits for the peer to read instead (it runs on the session's own
// handler goroutine).
//
// Latest(key) marks events that only need their newest value (prices,
// gauges): one waiting in a session's queue is replaced by a newer one
// with the same key, so a slow reader of a fast feed keeps up instead of
// being closed. Options.Compression negotiates permessage-deflate with
// clients that offer it; an event is compressed once for all the sessions
// that negotiated it, and what clients compress is inflated within
// MaxFrameBytes.
//
// DisconnectUser and JoinUser act on every session of a user, on every
// node: they travel through the broker like events. A broker that routes
// users (UserRouter, as the Redis broker does) carries a user's messages
// only to the nodes where that user has a session.
//
// # Memory
//
// Everything kept for a client is bounded and charged to its session or to
// a budget of the hub: the send queue holds events, answers, Pongs (one,
// however many Pings) and what waits in the socket's backlog
// (SendQueueBytes); the kernel's send buffer is SocketSendBuffer; frames
// waiting for handlers are bounded in bytes (MaxPendingBytes); memberships
// by MaxRooms; the history the hub keeps by HistoryBytes; sessions by
// MaxSessions. Every frame counts toward the rate limit, control frames
// included, and answers are charged by their size. The README states the
// worst case of a node as a formula of these options.
//
// # Closing
//
// Every close follows the closing handshake: the close frame is written
// after what was queued before it, and the connection stays open for
// CloseTimeout to read the peer's answer, so that the peer sees the code
// rather than a reset. Shutdown closes every session with 1001 after the
// frames it already received are answered.
//
// # Performance
//
// go test -bench . ./hub, on a 2-core machine: queueing an event to K room
// members costs about 45 ns per recipient for K = 1,000, the same with
// N = 1,000 and N = 10,000 sessions on the hub (BenchmarkRoomFanout); an
// event sent to 1,000 sessions allocates as much as encoding it alone
// (BenchmarkBroadcastEncodeOnce against BenchmarkEncodeOnly). bench/
// measures the whole path over real connections.
package hub
