package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10/non-standard/validators"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ginws/ginws/client/js"
	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/schema"
	"github.com/ginws/ginws/validate"
)

// SendChat is the data of chat.send.
type SendChat struct {
	Room string `json:"room" validate:"required,max=128"`
	Text string `json:"text" validate:"required,notblank,max=500"`
}

// ChatMessage is the data of chat.message.
type ChatMessage struct {
	User string `json:"user"`
	Text string `json:"text"`
	At   string `json:"at"`
}

// Typing is the data of typing, both ways.
type Typing struct {
	Room string `json:"room,omitempty" validate:"required,max=128"`
	User string `json:"user,omitempty"`
}

// Announce is the data of admin.announce and announcement.
type Announce struct {
	Text string `json:"text" validate:"required,notblank,max=500"`
}

type loginRequest struct {
	User string `json:"user" binding:"required,min=1,max=32,alphanum"`
	Role string `json:"role" binding:"required,oneof=member admin"`
}

// HistoryRequest is the data of chat.history.
type HistoryRequest struct {
	Room  string `json:"room" validate:"required,max=128"`
	Limit int    `json:"limit" validate:"omitempty,min=1,max=200"`
}

// roomOptions: every room has presence events and keeps its last 500
// messages for 30 minutes, so that reconnecting clients get what they missed.
var roomOptions = hub.RoomOptions{Presence: true, History: hub.HistoryOptions{Size: 500, TTL: 30 * time.Minute}}

// newValidator is the validator a hub makes by default plus notblank, so
// that a message of spaces is refused like an empty one instead of showing
// as a blank line.
func newValidator() *validate.Validator {
	v := validate.New(validate.Options{MaxBytes: hub.DefaultMaxFrameBytes, MaxDepth: hub.DefaultMaxDepth})
	if err := v.RegisterRule("notblank", validators.NotBlank, "{field} must not be blank"); err != nil {
		panic("example: " + err.Error()) // only a programmer's mistake gets here: the validator is new
	}
	return v
}

// newHub registers the chat's events on a hub that reports to act; opts
// holds what the flags set (CloseTimeout, DrainWindow, Compression).
func newHub(log *slog.Logger, broker hub.Broker, act *activity, opts hub.Options) *hub.Hub {
	opts.Validator, opts.Logger, opts.Broker, opts.Observer = newValidator(), log, broker, act
	opts.OnJoin = func(_ *hub.Session, room string) { act.joined(room) }
	opts.OnLeave = func(_ *hub.Session, room string) { act.left(room) }
	opts.Rooms = func(string) hub.RoomOptions { return roomOptions }
	h := hub.New(opts)
	act.prom.Watch(h)
	shareImages(h)
	chatters := hub.RequireRole("member", "admin")
	hub.Handle(h, "chat.send", func(c *hub.Context, in SendChat) (any, error) {
		if !c.Session().InRoom(in.Room) {
			return nil, hub.ErrNotMember
		}
		msg := ChatMessage{User: c.User().UserID, Text: in.Text, At: time.Now().UTC().Format(time.RFC3339)}
		return nil, c.Hub().To(in.Room).Emit("chat.message", msg)
	}, chatters)
	hub.Handle(h, "typing", func(c *hub.Context, in Typing) (any, error) {
		if !c.Session().InRoom(in.Room) {
			return nil, hub.ErrNotMember
		}
		return nil, c.Hub().To(in.Room).Except(c.Session()).Ephemeral().Emit("typing", Typing{User: c.User().UserID})
	}, chatters)
	// chat.history answers the room's recent messages (as the frames the
	// members got, offsets included), for a page that just joined.
	hub.Handle(h, "chat.history", func(c *hub.Context, in HistoryRequest) (any, error) {
		if !c.Session().InRoom(in.Room) {
			return nil, hub.ErrNotMember
		}
		if in.Limit == 0 {
			in.Limit = 50
		}
		events, pos, err := c.Hub().History(c, in.Room, in.Limit)
		if err != nil {
			return nil, err
		}
		return gin.H{"events": events, "epoch": pos.Epoch, "offset": pos.Offset}, nil
	}, chatters)
	hub.Handle(h, "admin.announce", func(c *hub.Context, in Announce) (any, error) {
		return nil, c.Hub().All().Emit("announcement", in)
	}, hub.RequireRole("admin"))
	// The events the chat sends, for /asyncapi.json and the TypeScript types.
	hub.DeclareEvent[ChatMessage](h, "chat.message")
	hub.DeclareEvent[Typing](h, "typing")
	hub.DeclareEvent[Announce](h, "announcement")
	return h
}

// maxBody bounds the JSON bodies of /api/login and /api/admin/disconnect,
// which need less than 100 bytes.
const maxBody = 4 << 10

// bindBody reads a JSON body of at most maxBody bytes into dst and answers
// the request itself when it cannot: 413 too_large, or 400 bad_request with
// invalid as the message. Reading stops at the bound: net/http closes the
// connection rather than read what is left of a larger body.
func bindBody(c *gin.Context, dst any, invalid string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		refuse(c, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", maxBody))
		return false
	}
	if err == nil {
		err = binding.JSON.BindBody(body, dst)
	}
	if err != nil {
		refuse(c, http.StatusBadRequest, "bad_request", invalid)
		return false
	}
	return true
}

// newRouter serves the page, the client, the login, the health check,
// the metrics, the admin view and the WebSocket. c.ClientIP() (the address the logs show)
// believes X-Forwarded-For only from the trusted proxies; with none, a client
// could name any address.
func newRouter(h *hub.Hub, act *activity, secret []byte, log *slog.Logger, static fs.FS, trustedProxies []string, tokenTTL time.Duration) (*gin.Engine, error) {
	r := gin.New()
	if err := r.SetTrustedProxies(trustedProxies); err != nil {
		return nil, fmt.Errorf("-trusted-proxies: %w", err)
	}
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) {
		if !h.Accepting() {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "shutting_down"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.POST("/api/login", func(c *gin.Context) {
		var req loginRequest
		if !bindBody(c, &req, "user must be 1-32 letters or digits and role member or admin") {
			return
		}
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub":   req.User,
			"roles": []string{req.Role},
			"exp":   time.Now().Add(tokenTTL).Unix(),
		}).SignedString(secret)
		if err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": gin.H{"code": "internal", "message": "cannot sign the token"}})
			return
		}
		c.JSON(http.StatusOK, gin.H{"token": token})
	})
	auth := middleware.JWT(middleware.JWTOptions{Secret: secret})
	r.GET("/ws", middleware.New(h, middleware.Options{
		Auth:     auth,
		Logger:   log,
		Observer: act,
	}))
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(act.prom.Registry(), promhttp.HandlerOpts{})))
	adminRoutes(r, h, act, auth, static)
	// The contract of every event, from the same structs that validate them.
	r.GET("/asyncapi.json", func(c *gin.Context) {
		doc, err := schema.AsyncAPI(h, schema.Info{Title: "ginws example chat", Version: "1.0.0", Path: "/ws",
			Description: "The chat of go run ./example."})
		if err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": gin.H{"code": "internal", "message": err.Error()}})
			return
		}
		c.Data(http.StatusOK, "application/json", doc)
	})
	r.StaticFS("/js", http.FS(js.FS))
	r.GET("/", func(c *gin.Context) { c.FileFromFS("/", http.FS(static)) })
	// The page links its icon; tools that ask for /favicon.ico anyway get
	// it rather than a 404.
	r.GET("/favicon.ico", func(c *gin.Context) { c.FileFromFS("favicon.svg", http.FS(static)) })
	r.StaticFS("/static", http.FS(static))
	return r, nil
}

func randomSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, errors.New("cannot make a random JWT secret")
	}
	return b, nil
}
