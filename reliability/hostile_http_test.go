package reliability_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/metrics"
	"github.com/ginws/ginws/middleware"
)

func TestClientChosenCloseCodes(t *testing.T) {
	m := metrics.New(metrics.Options{})
	// 2,000 upgrades in a second or two: more than the default admission
	// lets in, which is not what this test is about.
	a := newApp(t, hub.Options{Observer: m, MaxSessionsPerUser: -1}, middleware.Options{AdmitRate: -1})
	hdr := user(t, "closer")
	// Every code a peer may send in a close frame beyond the registered
	// ones: 3000-4999, 2,000 of them.
	const first, last = 3000, 4999
	var next atomic.Int64
	next.Store(first)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range cap(errs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			for code := int(next.Add(1) - 1); code <= last; code = int(next.Add(1) - 1) {
				conn, resp, err := d.Dial(a.URL, hdr)
				if err != nil {
					if resp != nil {
						err = fmt.Errorf("%w: %s", err, resp.Status)
					}
					errs <- err
					return
				}
				err = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""))
				// The echo of the code says the hub has seen it.
				echo := wstest.CloseCode(conn)
				conn.Close()
				if err != nil || echo != code {
					errs <- fmt.Errorf("close %d: echoed %d (%v)", code, echo, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var series map[string]float64
	require.Eventually(t, func() bool {
		series = closeSeries(t, m)
		var n float64
		for _, v := range series {
			n += v
		}
		return n == last-first+1
	}, 10*time.Second, 10*time.Millisecond, "every session closed is counted")
	// 4401, 4403 and 4429 are the protocol's own codes in that range.
	require.LessOrEqual(t, len(series), 3+1, "series of ginws_closes_total")
	assert.Equal(t, map[string]float64{"4401": 1, "4403": 1, "4429": 1, "other": last - first + 1 - 3}, series)
	observe("abuse", "2,000 distinct close codes (3000-4999) sent by clients", fmt.Sprintf("`ginws_closes_total` has %d series: 4401, 4403 and 4429 (the protocol's own) and `other` for the other 1,997", len(series)))
}

// closeSeries returns ginws_closes_total by its code label.
func closeSeries(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "ginws_closes_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "code" {
					out[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func TestLongOriginsDoNotFloodTheLog(t *testing.T) {
	// A server with the example's header limit (64 KiB), which a 60 KB
	// Origin fits.
	var logs wstest.LogBuffer
	a := newApp(t, hub.Options{}, middleware.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		func(s *http.Server) { s.MaxHeaderBytes = 64 << 10 })
	hdr := user(t, "alice")
	hdr.Set("Origin", "https://"+strings.Repeat("a", 60<<10-8))

	const n = 500
	for range n {
		require.Equal(t, http.StatusForbidden, wstest.Refuse(t, a.URL, hdr).Status)
	}
	// The middleware logs before it answers: every line is written.
	out := logs.String()
	require.Equal(t, n, strings.Count(out, "origin refused"))
	require.Less(t, len(out), 200<<10, "log bytes for %d refusals of a 60 KB origin", n)
	assert.True(t, utf8.ValidString(out))
	observe("abuse", "500 refused upgrades with a 60 KB Origin header", fmt.Sprintf("%d KB of log in all (%d bytes a refusal): the Origin is cut to 128 bytes, the cut marked", len(out)>>10, len(out)/n))
}

func TestHTTP10UpgradeRefused(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	conn, err := net.Dial("tcp", a.Addr())
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = fmt.Fprintf(conn, "GET /ws HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: %s\r\n\r\n", user(t, "alice").Get("Authorization"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var body struct{ Error struct{ Code string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "bad_request", body.Error.Code)
	assert.Equal(t, 0, a.Hub.Len())
	observe("abuse", "WebSocket upgrade over HTTP/1.0 (RFC 6455 needs 1.1)", "400 `bad_request`, no upgrade")
}

func TestCritHeaderRefused(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	claims := jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()}
	for name, crit := range map[string]any{
		"an unknown extension": []string{"urn:example:must-check"},
		"an empty list":        []string{},
		"not a list":           "urn:example:must-check",
		"not strings":          []int{1},
	} {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["crit"] = crit
		tok.Header["urn:example:must-check"] = true
		s, err := tok.SignedString(wstest.Secret)
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, wstest.Refuse(t, a.URL, wstest.Bearer(s)).Status, name)
	}
	observe("abuse", "validly signed JWT whose `crit` header names an extension (or is malformed)", "401 `unauthorized`, no upgrade (RFC 7515 §4.1.11: no extension is understood)")
}
