package middleware_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/middleware"
)

type SendChat struct {
	Room string `json:"room" validate:"required,max=128"`
	Text string `json:"text" validate:"required,min=1,max=500"`
}

func ExampleNew() {
	key := []byte("a-secret-of-at-least-32-bytes!!!")

	h := hub.New(hub.Options{})
	hub.Handle(h, "chat.send", func(c *hub.Context, in SendChat) (any, error) {
		return nil, c.Hub().To(in.Room).Emit("chat.message", map[string]string{"user": c.User().UserID, "text": in.Text})
	}, hub.RequireRole("member"))

	r := gin.New()
	r.GET("/ws", middleware.New(h, middleware.Options{
		Auth: middleware.JWT(middleware.JWTOptions{Secret: key}),
	}))

	// A client: a Go program with a token (a browser would use client/js).
	srv := httptest.NewServer(r)
	defer srv.Close()
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "roles": []string{"member"}, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
		http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","id":"1","room":"lobby"}`))
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"chat.send","data":{"room":"lobby","text":"hello"}}`))
	// Read until the chat.message arrives, for five seconds at most.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for done := false; !done; {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			fmt.Println(err)
			return
		}
		// Under load the server may batch frames into one JSON array.
		var frames []json.RawMessage
		if json.Unmarshal(msg, &frames) != nil {
			frames = []json.RawMessage{msg} // a single frame
		}
		for _, f := range frames {
			if strings.Contains(string(f), `"chat.message"`) {
				fmt.Println(string(f))
				done = true
			}
		}
	}
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Shutdown(ctx)
	// Output: {"type":"chat.message","room":"lobby","data":{"text":"hello","user":"alice"}}
}
