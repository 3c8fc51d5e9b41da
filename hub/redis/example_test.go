package redis_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/middleware"
)

// Every node of the application runs this with the same REDIS_URL: an event
// emitted on one node reaches the room's members on all of them, and the
// history of "chat/*" rooms, kept in Redis, lets a client that reconnects to
// another node resume where it left off. (No Output: it needs a Redis server.)
func ExampleNew() {
	b, err := redis.New(redis.Options{URL: os.Getenv("REDIS_URL")}) // e.g. redis://:password@127.0.0.1:6379/0
	if err != nil {
		log.Fatal(err)
	}
	h := hub.New(hub.Options{
		Broker: b,
		Rooms: hub.MatchRooms([]string{"chat/*"}, map[string]hub.RoomOptions{
			"chat/*": {Presence: true, History: hub.HistoryOptions{Size: 100}},
		}),
	})
	hub.Handle(h, "chat.send", func(c *hub.Context, in struct {
		Room string `json:"room" validate:"required,max=128"`
		Text string `json:"text" validate:"required,min=1,max=500"`
	}) (any, error) {
		return nil, c.Hub().To(in.Room).Emit("chat.message", map[string]string{"user": c.User().UserID, "text": in.Text})
	})

	r := gin.New()
	r.GET("/ws", middleware.New(h, middleware.Options{
		Auth: middleware.JWT(middleware.JWTOptions{Secret: []byte(os.Getenv("JWT_SECRET"))}),
	}))
	srv := &http.Server{Addr: ":8080", Handler: r}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	// The hub first: http.Server.Shutdown waits neither for WebSockets nor
	// for RegisterOnShutdown. The hub's Shutdown closes the sessions,
	// removes this node's presence entries from Redis and closes the
	// broker.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.Shutdown(sctx)
	_ = srv.Shutdown(sctx)
}

// A feed published by one goroutine: with AsyncPublish each Emit returns
// once the event is queued, and the events go to Redis in batches rather
// than a round trip each. Emit fails only when the queue stays full for
// PublishTimeout; what Redis did not take reaches OnError, counted.
func ExampleOptions_asyncPublish() {
	b, err := redis.New(redis.Options{URL: os.Getenv("REDIS_URL"), AsyncPublish: true})
	if err != nil {
		log.Fatal(err)
	}
	h := hub.New(hub.Options{Broker: b, OnError: func(_ *hub.Session, err error) { log.Print(err) }})
	defer h.Shutdown(context.Background())
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := range 1000 {
		<-tick.C
		price := map[string]any{"symbol": "BTC", "price": 97000 + i%100}
		if err := h.To("prices").Latest("BTC").Emit("price", price); err != nil {
			log.Print(err)
		}
	}
}

// With a client the application already has (or a goredis.UniversalClient
// for Sentinel or Cluster), the broker shares it and leaves closing it to
// the application.
func ExampleNew_client() {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	b, err := redis.New(redis.Options{Client: rdb, Prefix: "chat:"})
	if err != nil {
		log.Fatal(err)
	}
	h := hub.New(hub.Options{Broker: b})
	defer h.Shutdown(context.Background())
	// ... hub.Handle, middleware.New(h, ...) as usual.
}
