// Package client is the Go client of the ginws wire protocol, for bots,
// services and load tools: it connects with a token provider, reconnects
// with exponential back-off and full jitter (base 500 ms, cap 30 s, reset
// after 10 s open; at least 5 s after a 4429), keeps a heartbeat (a JSON
// ping every interval the server's welcome names; no pong within twice that
// closes and reconnects), re-joins its rooms with their last offsets (the
// rooms it joined and those the server joined it to with room.joined),
// queues requests while offline (bounded) and stops for good on the
// terminal close codes 1000, 1007, 1008, 1009 and 4403.
//
//	c, err := client.New(client.Options{
//		URL:   "wss://chat.example.com/ws",
//		Token: func(ctx context.Context) (string, error) { return login(ctx) },
//	})
//	client.On(c, "chat.message", func(ev client.Event, m ChatMessage) { ... })
//	_, err = c.Join(ctx, "lobby")
//	_, err = c.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: "hi"})
//
// Request returns the ack's data, a *Error with the server's code and
// fields, ErrQueueFull, ErrConnectionLost (the answer may never come: the
// server may or may not have handled it) or the context's error.
package client
