package wstest

import (
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"
)

// Main runs a package's tests, with Gin in release mode (no route
// listing), and fails them if a goroutine is left behind (goleak, with
// opts): a package's TestMain is func TestMain(m *testing.M) { wstest.Main(m) }.
func Main(m *testing.M, opts ...goleak.Option) {
	gin.SetMode(gin.ReleaseMode)
	goleak.VerifyTestMain(m, opts...)
}
