package wstest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// DialStatus dials url and returns the HTTP status of the answer: 101 when
// the upgrade succeeded (the connection is closed at once), the refusal's
// status otherwise, or 0 when no answer came.
func DialStatus(url string, header http.Header) int {
	conn, resp, err := (&websocket.Dialer{HandshakeTimeout: Wait}).Dial(url, header)
	if err == nil {
		conn.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Refusal is an upgrade refused with an HTTP answer.
type Refusal struct {
	Status int
	Header http.Header
	// Code and Message are those of a JSON body {"error":{"code","message"}},
	// as the middleware writes it; empty for another body.
	Code, Message string
}

// Refuse dials url and returns the refusal; the test fails if the upgrade
// succeeds or no HTTP answer comes.
func Refuse(t testing.TB, url string, header http.Header) Refusal {
	t.Helper()
	conn, resp, err := (&websocket.Dialer{HandshakeTimeout: Wait}).Dial(url, header)
	if err == nil {
		conn.Close()
	}
	require.Error(t, err, "the upgrade succeeded")
	require.NotNil(t, resp, "no HTTP answer: %v", err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(raw, &body)
	return Refusal{Status: resp.StatusCode, Header: resp.Header, Code: body.Error.Code, Message: body.Error.Message}
}

// CloseCode reads conn until it ends (for up to twice Wait) and returns the
// code of its close frame, or 0 when it ended without one.
func CloseCode(conn *websocket.Conn) int {
	_ = conn.SetReadDeadline(time.Now().Add(2 * Wait))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return 0
		}
	}
}
