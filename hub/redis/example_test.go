package redis_test

import (
	"context"
	"log"
	"net/http"
	"os"
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
	srv.RegisterOnShutdown(func() {
		// Shutdown removes this node's presence entries from Redis and
		// closes the broker.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	log.Fatal(srv.ListenAndServe())
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
