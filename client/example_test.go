package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ginws/ginws/client"
)

func ExampleClient_Request() {
	srv := startExampleServer()
	defer srv.stop()

	c, err := client.New(client.Options{
		URL:    srv.url(),
		Token:  func(context.Context) (string, error) { return "alice", nil },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	got := make(chan string, 1)
	client.On(c, "chat.message", func(ev client.Event, m struct{ User, Text string }) { got <- m.User + " in " + ev.Room + ": " + m.Text })
	if _, err := c.Join(ctx, "lobby"); err != nil {
		fmt.Println(err)
		return
	}
	ack, err := c.Request(ctx, "chat.send", map[string]string{"room": "lobby", "text": "hello"})
	fmt.Println(string(ack), err)
	fmt.Println(<-got)
	_, err = c.Request(ctx, "chat.send", map[string]string{"room": "lobby"})
	fmt.Println(err)
	// Output:
	// {"len":5} <nil>
	// alice in lobby: hello
	// validation_failed: validation failed
}
