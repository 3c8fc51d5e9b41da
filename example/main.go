// Command example is the ginws chat: a Gin application with a web page that
// shows authentication, rooms, presence, typing indicators, validation
// errors, admin announcements, reconnection with recovery of missed
// messages, and Prometheus metrics on /metrics.
//
//	go run ./example                      # http://127.0.0.1:8080
//	go run ./example -addr 127.0.0.1:9000 -jwt-secret s3cret
//	go run ./example -tls-cert cert.pem -tls-key key.pem
//
// Flags may also come from the environment: ADDR, JWT_SECRET, REDIS_URL.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/hub/redis"
	"github.com/ginws/ginws/metrics"
)

//go:embed web
var web embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

type config struct {
	addr, secret, redis, cert, key string
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fl := flag.NewFlagSet("example", flag.ContinueOnError)
	fl.SetOutput(out)
	fl.StringVar(&c.addr, "addr", envOr(getenv, "ADDR", "127.0.0.1:8080"), "listen address (env ADDR)")
	fl.StringVar(&c.secret, "jwt-secret", getenv("JWT_SECRET"), "HS256 key for tokens (env JWT_SECRET); random when empty")
	fl.StringVar(&c.redis, "redis", getenv("REDIS_URL"), "Redis URL for the multi-node broker (env REDIS_URL)")
	fl.StringVar(&c.cert, "tls-cert", "", "TLS certificate file: serve HTTPS and wss://")
	fl.StringVar(&c.key, "tls-key", "", "TLS key file")
	if err := fl.Parse(args); err != nil {
		return c, err
	}
	if (c.cert == "") != (c.key == "") {
		return c, errors.New("-tls-cert and -tls-key go together")
	}
	return c, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// run serves until ctx ends, then shuts down gracefully: the listener
// stops, /healthz answers 503, and every session is closed with 1001 after
// what was queued to it. ready, if not nil, receives the address once the
// server listens.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer, ready chan<- string) error {
	cfg, err := parseFlags(args, getenv, out)
	if err != nil {
		return err
	}
	secret := []byte(cfg.secret)
	if len(secret) == 0 {
		if secret, err = randomSecret(); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	gin.SetMode(gin.ReleaseMode)
	static, err := fs.Sub(web, "web")
	if err != nil {
		return err
	}
	var broker hub.Broker // nil: the in-memory default
	if cfg.redis != "" {
		rb, err := redis.New(redis.Options{URL: cfg.redis, Logger: log})
		if err != nil {
			return fmt.Errorf("-redis: %w", err)
		}
		broker = rb
	}
	m := metrics.New(metrics.Options{})
	h := newHub(log, broker, m)
	srv := &http.Server{
		Handler:           newRouter(h, m, secret, log, static),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.cert != "" {
		scheme = "https"
	}
	log.Info("ginws example listening", "url", scheme+"://"+ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.cert != "" {
			errc <- srv.ServeTLS(ln, cfg.cert, cfg.key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The hub first: /healthz and new upgrades answer 503 while every
	// session is closed with 1001. net/http's Shutdown does not wait for
	// hijacked WebSocket connections, so the order matters.
	if err := h.Shutdown(sctx); err != nil {
		return err
	}
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
