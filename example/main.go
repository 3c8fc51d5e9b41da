// Command example is the ginws chat: a Gin application with a web page that
// shows authentication, rooms, presence, typing indicators, validation
// errors, admin announcements, reconnection with recovery of missed
// messages, and Prometheus metrics on /metrics.
//
//	go run ./example                      # http://127.0.0.1:8080
//	go run ./example -addr 127.0.0.1:9000 -jwt-secret s3cret
//	go run ./example -tls-cert cert.pem -tls-key key.pem
//	go run ./example -trusted-proxies 10.0.0.0/8   # behind a load balancer
//	go run ./example -redis redis://127.0.0.1:6379/0             # many nodes, one Redis
//	go run ./example -redis-cluster 127.0.0.1:7000,127.0.0.1:7001 # many nodes, a Redis Cluster
//	go run ./example -redis redis://127.0.0.1:6379/0 -redis-async # Emit does not wait for Redis
//
// Flags may also come from the environment: ADDR, JWT_SECRET, REDIS_URL,
// REDIS_CLUSTER, TRUSTED_PROXIES.
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
	"strconv"
	"strings"
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
	redisCluster, trustedProxies   []string
	drain                          time.Duration // hub.Options.DrainWindow
	compress                       bool          // hub.Options.Compression.Enabled
	redisAsync                     bool          // redis.Options.AsyncPublish
	tokenTTL                       time.Duration // how long the login's tokens last
	// What no flag sets; tests change them.
	readTimeout, idleTimeout, shutdownTimeout time.Duration
	closeTimeout                              time.Duration // hub.Options.CloseTimeout; 0: its default
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (config, error) {
	c := config{readTimeout: 15 * time.Second, idleTimeout: 30 * time.Second, shutdownTimeout: 10 * time.Second}
	fl := flag.NewFlagSet("example", flag.ContinueOnError)
	fl.SetOutput(out)
	fl.Usage = func() {
		fmt.Fprintf(out, "Usage: example [flags]\n\nThe ginws chat demo: open the address it listens on, sign in with any name.\n\n")
		fl.PrintDefaults()
	}
	fl.StringVar(&c.addr, "addr", envOr(getenv, "ADDR", "127.0.0.1:8080"), "listen address (env ADDR)")
	fl.StringVar(&c.secret, "jwt-secret", getenv("JWT_SECRET"), "HS256 key for tokens (env JWT_SECRET); random when empty")
	fl.StringVar(&c.redis, "redis", getenv("REDIS_URL"), "Redis URL for the multi-node broker (env REDIS_URL)")
	cluster := fl.String("redis-cluster", getenv("REDIS_CLUSTER"),
		"addresses (host:port, comma-separated) of Redis Cluster nodes for the multi-node broker (env REDIS_CLUSTER)")
	async, err := boolEnv(getenv, "REDIS_ASYNC")
	if err != nil {
		return c, err
	}
	fl.BoolVar(&c.redisAsync, "redis-async", async,
		"with -redis or -redis-cluster: Emit returns once an event is queued for Redis, which takes it in batches (env REDIS_ASYNC)")
	fl.StringVar(&c.cert, "tls-cert", "", "TLS certificate file: serve HTTPS and wss://")
	fl.StringVar(&c.key, "tls-key", "", "TLS key file")
	fl.DurationVar(&c.tokenTTL, "token-ttl", time.Hour,
		"how long the tokens of /api/login last; sessions refresh them in-band before they expire")
	fl.DurationVar(&c.drain, "drain", 10*time.Second,
		"on SIGTERM or SIGINT, close the sessions spread over this long, refusing new ones (0: all at once)")
	fl.BoolVar(&c.compress, "compress", false,
		"negotiate permessage-deflate with clients that offer it (browsers do): events of 256 bytes or more go compressed")
	proxies := fl.String("trusted-proxies", getenv("TRUSTED_PROXIES"),
		"addresses or CIDRs, comma-separated, of the proxies whose X-Forwarded-For names the client (env TRUSTED_PROXIES); none by default")
	if err := fl.Parse(args); err != nil {
		return c, err
	}
	if c.tokenTTL < time.Second {
		return c, errors.New("-token-ttl: a second or more (tokens expire on whole seconds)")
	}
	if c.drain < 0 {
		return c, errors.New("-drain: a duration of 0 or more")
	}
	// The drain, then the closing handshakes.
	c.shutdownTimeout += c.drain
	if (c.cert == "") != (c.key == "") {
		return c, errors.New("-tls-cert and -tls-key go together")
	}
	for _, a := range strings.Split(*cluster, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return c, fmt.Errorf("-redis-cluster: %q is not host:port", a)
		}
		c.redisCluster = append(c.redisCluster, a)
	}
	if c.redis != "" && len(c.redisCluster) > 0 {
		return c, errors.New("-redis and -redis-cluster exclude each other")
	}
	if c.redisAsync && c.redis == "" && len(c.redisCluster) == 0 {
		return c, errors.New("-redis-async needs -redis or -redis-cluster")
	}
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return c, fmt.Errorf("-trusted-proxies: %q is neither an address nor a CIDR", p)
		}
		c.trustedProxies = append(c.trustedProxies, p)
	}
	return c, nil
}

// boolEnv reads a boolean variable: false when unset.
func boolEnv(getenv func(string) string, key string) (bool, error) {
	v := getenv(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is neither true nor false", key, v)
	}
	return b, nil
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
// server listens. -h prints the usage and returns nil: asking for help is
// not a failure.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer, ready chan<- string) error {
	cfg, err := parseFlags(args, getenv, out)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return serve(ctx, cfg, out, ready)
}

// serve is run once the flags are parsed; tests call it to set what no
// flag sets.
func serve(ctx context.Context, cfg config, out io.Writer, ready chan<- string) error {
	secret := []byte(cfg.secret)
	if len(secret) == 0 {
		var err error
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
	if cfg.redis != "" || len(cfg.redisCluster) > 0 {
		rb, err := redis.New(redis.Options{URL: cfg.redis, Addrs: cfg.redisCluster, AsyncPublish: cfg.redisAsync, Logger: log})
		if err != nil {
			return fmt.Errorf("redis broker: %w", err)
		}
		broker = rb
	}
	act := newActivity(metrics.New(metrics.Options{}))
	h := newHub(log, broker, act, hub.Options{CloseTimeout: cfg.closeTimeout, DrainWindow: cfg.drain,
		Compression: hub.Compression{Enabled: cfg.compress}})
	router, err := newRouter(h, act, secret, log, static, cfg.trustedProxies, cfg.tokenTTL)
	if err != nil {
		return err
	}
	// ReadTimeout bounds a slow body and IdleTimeout a silent keep-alive
	// connection; neither cuts a WebSocket, since net/http clears a
	// connection's deadlines when the hub takes it over.
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.readTimeout,
		IdleTimeout:       cfg.idleTimeout,
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
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// The hub first: /healthz and new upgrades answer 503 while every
	// session is closed with 1001. net/http's Shutdown does not wait for
	// hijacked WebSocket connections, so the order matters. The server is
	// shut down even when the hub ran out of time, or its listener and
	// connections would outlive run.
	var errs []error
	if err := h.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("hub shutdown: %w", err))
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err), srv.Close())
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
