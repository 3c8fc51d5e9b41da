// Command testserver is the ginws server the JavaScript client's tests (and
// the protocol tests of other clients) run against. It listens on -addr
// (127.0.0.1 only), prints "listening on ADDR" once ready, and shuts down
// gracefully (1001) on SIGTERM or SIGINT.
//
// Rooms named h/* keep a history of 100 events.
//
// Tokens are not JWTs but "user" or "user.ms" (a principal that expires
// after ms milliseconds); the user "banned" is refused with 4403.
// Endpoints: /ws, and /silent, which sends a welcome with a 100 ms heartbeat
// and then never answers, for heartbeat time-out tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

type sendChat struct {
	Room string `json:"room" validate:"required,max=128"`
	Text string `json:"text" validate:"required,min=1,max=500"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	compress := flag.Bool("compress", false, "negotiate permessage-deflate")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	h := hub.New(hub.Options{
		Logger:      log,
		Compression: hub.Compression{Enabled: *compress},
		Rooms: hub.MatchRooms([]string{"h/*", "*"}, map[string]hub.RoomOptions{
			"h/*": {Presence: true, History: hub.HistoryOptions{Size: 100}},
			"*":   {Presence: true},
		}),
		OnConnect: func(s *hub.Session) error {
			if s.Principal().UserID == "banned" {
				return errors.New("banned")
			}
			return nil
		},
	})
	hub.Handle(h, "chat.send", func(c *hub.Context, in sendChat) (any, error) {
		if !c.Session().InRoom(in.Room) {
			return nil, hub.ErrNotMember
		}
		return "ok", c.Hub().To(in.Room).Emit("chat.message", map[string]string{"user": c.User().UserID, "text": in.Text})
	})
	hub.Handle(h, "echo", func(c *hub.Context, in any) (any, error) { return in, nil })
	// Binary frames come back reversed: the client sees the server's frame.
	h.HandleBinary(func(c *hub.Context, data []byte) error {
		out := slices.Clone(data)
		slices.Reverse(out)
		return c.Session().EmitBinary(out)
	})
	// join.me has the server join every session of the caller's user to a
	// room (Hub.JoinUser), as an application would.
	hub.Handle(h, "join.me", func(c *hub.Context, in struct {
		Room string `json:"room" validate:"required,max=128"`
	}) (any, error) {
		return nil, c.Hub().JoinUser(c, c.User().UserID, in.Room)
	})

	auth := middleware.AuthFunc(func(_ *gin.Context, token string) (hub.Principal, error) {
		user, ms, expiring := strings.Cut(token, ".")
		if user == "" {
			return hub.Principal{}, middleware.ErrNoToken
		}
		p := hub.Principal{UserID: user, Roles: []string{"member"}}
		if expiring {
			n, _ := strconv.Atoi(ms)
			p.Expires = time.Now().Add(time.Duration(n) * time.Millisecond)
		}
		return p, nil
	})
	r := gin.New()
	r.GET("/ws", middleware.New(h, middleware.Options{Auth: auth, Logger: log, InsecureSkipOriginCheck: true}))
	r.GET("/silent", silent)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "testserver: refusing to listen beyond loopback")
		os.Exit(2)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		<-ctx.Done()
		// net/http does not wait for hijacked connections: the hub closes
		// them (1001) after the listener stops.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = h.Shutdown(ctx)
	}()
	fmt.Printf("listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-stopped
}

// silent welcomes a client with a short heartbeat and then never answers.
func silent(c *gin.Context) {
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}, CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome","data":{"session":"silent","user":"u","heartbeat":100}}`))
	conn.SetPingHandler(func(string) error { return nil })
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}
