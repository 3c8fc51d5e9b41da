package hub

import (
	"time"

	"github.com/gorilla/websocket"
)

// touch extends the heartbeat deadline after a frame or a Pong, unless the
// closing handshake set a shorter one.
func (s *Session) touch() {
	if d := s.closeDeadline.Load(); d != 0 {
		_ = s.conn.SetReadDeadline(time.Unix(0, d))
		return
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(s.hub.opts.HeartbeatTimeout))
	if d := s.closeDeadline.Load(); d != 0 {
		_ = s.conn.SetReadDeadline(time.Unix(0, d))
	}
}

// onPing answers a Ping from the peer through the send queue, where it is
// charged to the session and coalesced with an unanswered one. It runs on
// the reader goroutine and counts toward the rate limit.
func (s *Session) onPing(data string) error {
	s.touch()
	if !s.isClosing() && s.hub.allow(s, "", false) {
		_ = s.out.enqueue(outgoing{data: []byte(data), control: websocket.PongMessage, urgent: true})
	}
	return nil
}

// ping sends a Ping control frame; WriteControl may run beside the writer.
func (s *Session) ping() {
	s.mu.Lock()
	stop := s.state >= closeSent
	s.mu.Unlock()
	if stop {
		return
	}
	_ = s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.hub.opts.WriteTimeout))
	s.pingTimer.Reset(s.hub.opts.PingInterval)
}
