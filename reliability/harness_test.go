package reliability_test

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
)

// Report rows, written by TestMain after a passing run.
var (
	reportMu sync.Mutex
	rows     []row
)

type row struct{ area, attack, observed string }

var areaOrder = map[string]int{"handshake": 0, "frames": 1, "abuse": 2, "faults": 3, "lifecycle": 4}

// observe records what the suite saw; call it after the assertions passed.
func observe(area, attack, observed string) {
	reportMu.Lock()
	rows = append(rows, row{area, attack, observed})
	reportMu.Unlock()
}

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	code := m.Run()
	if path := os.Getenv("GINWS_RELIABILITY_REPORT"); code == 0 && path != "" && len(rows) > 0 {
		if err := writeReport(path); err != nil {
			fmt.Fprintln(os.Stderr, "reliability report:", err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func writeReport(path string) error {
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].area != rows[j].area {
			return areaOrder[rows[i].area] < areaOrder[rows[j].area]
		}
		return rows[i].attack < rows[j].attack
	})
	var b strings.Builder
	b.WriteString("# Reliability: what was tried, what happened\n\n")
	b.WriteString("Written by `go test ./reliability` (the adversarial suite, run by `make test`) from\n")
	b.WriteString("what its assertions observed over real loopback connections; do not edit by hand.\n\n")
	b.WriteString("| area | attack or fault | observed behaviour |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.area, r.attack, r.observed)
	}
	if peak := peakRSS(); peak != "" {
		fmt.Fprintf(&b, "\nThe server runs in the test process, beside the clients that attack it: its peak RSS\n"+
			"over the whole suite (every attack above, one after another) was %s; `make test` runs it under\n"+
			"the race detector, which multiplies memory several times.\n", peak)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// peakRSS returns the process's peak resident set (VmHWM) as Linux reports
// it, or "" elsewhere.
func peakRSS() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int
			if _, err := fmt.Sscan(v, &kb); err == nil {
				return fmt.Sprintf("%d MiB", kb>>10)
			}
		}
	}
	return ""
}

// headerTimeout is the servers' http.Server.ReadHeaderTimeout: generous,
// so that no handshake meets it on a busy machine, where the goroutine that
// reads a request can wait its turn for longer than a short time-out (the
// server then closes the connection, unread request and all, and the
// client's dial gets a reset). A test of slow handshakes sets a short one.
const headerTimeout = 30 * time.Second

// newApp starts a fixture hub (wstest.NewHub) behind the middleware and
// Gin, as an application would mount it, on a loopback server with a
// header time-out and limit; configure, if any, adjusts its http.Server
// before it starts.
func newApp(t *testing.T, opts hub.Options, mopts middleware.Options, configure ...func(*http.Server)) *wstest.Server {
	t.Helper()
	return wstest.StartApp(t, wstest.NewHub(opts), wstest.App{Middleware: mopts, Server: func(s *http.Server) {
		s.ReadHeaderTimeout = headerTimeout
		s.MaxHeaderBytes = 16 << 10
		for _, f := range configure {
			f(s)
		}
	}})
}

// user is the Authorization header of a valid token for id.
func user(t *testing.T, id string) http.Header { return wstest.AuthHeader(t, id) }
