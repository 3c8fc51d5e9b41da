package wstest

import (
	"context"
	"testing"

	"github.com/gin-gonic/gin"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// Main runs a package's tests, with Gin in release mode (no route
// listing), and fails them if a goroutine is left behind (goleak): a
// package's TestMain is func TestMain(m *testing.M) { wstest.Main(m) }.
//
// Two allowances for go-redis, for tests that kill a Redis Cluster node:
// its log of every failed dial is dropped (the tests see the outage through
// the hub's error hook), and its pool's goroutine that keeps dialing a dead
// node for up to a second after the client is closed, which nothing can
// stop, is not counted as a leak.
func Main(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	goredis.SetLogger(quietRedis{})
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
