package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ginws/ginws/hub"
)

func ExampleHandle() {
	type SendChat struct {
		Room string `json:"room" validate:"required,max=128"`
		Text string `json:"text" validate:"required,min=1,max=500"`
	}
	h := hub.New(hub.Options{})
	hub.Handle(h, "chat.send", func(c *hub.Context, in SendChat) (any, error) {
		if !c.Session().InRoom(in.Room) {
			return nil, hub.ErrNotMember
		}
		return "sent", c.Hub().To(in.Room).Emit("chat.message", in)
	})

	// Without the middleware, the application authenticates and checks the
	// origin itself before Accept.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.Accept(w, r, hub.Principal{UserID: "alice"}, nil)
	}))
	defer srv.Close()

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_, _, _ = conn.ReadMessage() // welcome
	for i, frame := range []string{
		`{"type":"chat.send","id":"1","data":{"room":"lobby","text":"hi"}}`,
		`{"type":"join","id":"2","room":"lobby"}`,
		`{"type":"chat.send","id":"3","data":{"room":"lobby","text":"hi"}}`,
		`{"type":"chat.send","id":"4","data":{"room":"lobby"}}`,
	} {
		_ = conn.WriteMessage(websocket.TextMessage, []byte(frame))
		// Read until the reply with this id; under load the server may
		// send several frames as one JSON array.
		for replied := false; !replied; {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := conn.ReadMessage()
			if err != nil {
				fmt.Println(err)
				return
			}
			frames := []json.RawMessage{msg}
			if msg[0] == '[' {
				_ = json.Unmarshal(msg, &frames)
			}
			for _, f := range frames {
				fmt.Println(string(f))
				replied = replied || strings.Contains(string(f), fmt.Sprintf(`"id":"%d"`, i+1))
			}
		}
	}
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Shutdown(ctx)
	// Output:
	// {"type":"error","id":"1","error":{"code":"not_member","message":"join the room first"}}
	// {"type":"ack","id":"2","data":{"room":"lobby","members":1,"epoch":"","offset":0,"recovered":false}}
	// {"type":"chat.message","room":"lobby","data":{"room":"lobby","text":"hi"}}
	// {"type":"ack","id":"3","data":"sent"}
	// {"type":"error","id":"4","error":{"code":"validation_failed","message":"validation failed","fields":[{"field":"text","rule":"required","message":"text is required"}]}}
}

// A ticker sends each symbol's price as a replaceable event: a client that
// reads slowly gets the newest price of every symbol, not every price, and
// is not closed for falling behind.
func ExampleTarget_Latest() {
	type Price struct {
		Symbol string  `json:"symbol"`
		Price  float64 `json:"price"`
	}
	h := hub.New(hub.Options{})
	defer func() { _ = h.Shutdown(context.Background()) }()
	hub.DeclareEvent[Price](h, "price", hub.Replaceable())
	for _, p := range []Price{{"BTC", 97000}, {"ETH", 3400}, {"BTC", 97010}} {
		if err := h.To("prices").Latest(p.Symbol).Emit("price", p); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println("price is replaceable:", h.Events()[0].Replaceable)
	// Output: price is replaceable: true
}
