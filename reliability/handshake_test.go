package reliability_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/middleware"
)

func TestHandshakeRefusals(t *testing.T) {
	a := newApp(t, hub.Options{}, middleware.Options{})
	hour := time.Now().Add(time.Hour).Unix()
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "eve", "exp": hour}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	wrongKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "eve", "exp": hour}).SignedString([]byte("not-the-servers-key-at-all-32b!!"))
	require.NoError(t, err)
	good := user(t, "alice").Get("Authorization")

	for _, tc := range []struct {
		attack string
		header http.Header
		status int
		code   string
	}{
		{"missing token", http.Header{}, 401, "unauthorized"},
		{"malformed token", http.Header{"Authorization": {"Bearer abc def"}}, 401, "unauthorized"},
		{"expired token", wstest.Bearer(wstest.Token(t, jwt.MapClaims{"sub": "eve", "exp": time.Now().Add(-time.Minute).Unix()})), 401, "unauthorized"},
		{"token from the future (nbf)", wstest.Bearer(wstest.Token(t, jwt.MapClaims{"sub": "eve", "exp": hour, "nbf": hour - 60})), 401, "unauthorized"},
		{"token signed with another key", wstest.Bearer(wrongKey), 401, "unauthorized"},
		{"alg:none token", wstest.Bearer(none), 401, "unauthorized"},
		{"origin of another site", http.Header{"Authorization": {good}, "Origin": {"https://evil.example"}}, 403, "forbidden_origin"},
		{"suffix-trick origin", http.Header{"Authorization": {good}, "Origin": {"https://app.example.com.evil.io"}}, 403, "forbidden_origin"},
		{"null origin", http.Header{"Authorization": {good}, "Origin": {"null"}}, 403, "forbidden_origin"},
	} {
		t.Run(tc.attack, func(t *testing.T) {
			r := wstest.Refuse(t, a.URL, tc.header)
			assert.Equal(t, tc.status, r.Status)
			assert.Equal(t, tc.code, r.Code)
			observe("handshake", tc.attack, fmt.Sprintf("%d `%s`, no upgrade", tc.status, tc.code))
		})
	}

	t.Run("plain GET without upgrade", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, a.HTTP.URL+"/ws", nil)
		req.Header = user(t, "alice")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 400, resp.StatusCode)
		assert.Contains(t, string(body), `"code":"bad_request"`)
		observe("handshake", "plain GET without upgrade", "400 `bad_request`")
	})

	t.Run("slow handshake (slowloris)", func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		slow := newApp(t, hub.Options{}, middleware.Options{}, func(s *http.Server) { s.ReadHeaderTimeout = timeout })
		start := time.Now() // before the dial: the server's clock starts after it
		conn, err := net.Dial("tcp", slow.Addr())
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n"))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
			_, err := io.ReadAll(conn) // until the server closes
			done <- err
		}()
		// Dribble a header byte every 50 ms, never finishing, so that only
		// a time-out on the whole header ends it; a minute bounds the wait.
		dribble := time.NewTicker(50 * time.Millisecond)
		defer dribble.Stop()
		giveUp := time.After(time.Minute)
		for {
			select {
			case err := <-done:
				// EOF, or a reset when a dribbled byte found the
				// connection closed: either way, not our deadline.
				var ne net.Error
				assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closed the connection, not our read deadline: %v", err)
				assert.GreaterOrEqual(t, time.Since(start), timeout, "the header time-out ended it")
				observe("handshake", "slow handshake (slowloris), http.Server.ReadHeaderTimeout 300 ms", "connection closed by the server after the header time-out")
				return
			case <-dribble.C:
				_, _ = conn.Write([]byte("X"))
			case <-giveUp:
				t.Fatal("the server kept a slow handshake open")
			}
		}
	})
}
