package hub

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/olahol/melody"
	"golang.org/x/time/rate"

	"github.com/ginws/ginws/validate"
	"github.com/ginws/ginws/wire"
)

// incoming is a client frame waiting for the session's handler goroutine.
type incoming struct {
	env    envelope
	binary []byte
	size   int // bytes charged to MaxPendingBytes
	// server: a join the application made (Hub.JoinUser), not the client.
	server bool
}

// onText runs on the session's reader goroutine for each text frame.
func (h *Hub) onText(ms *melody.Session, data []byte) {
	s := sessionOf(ms)
	if s == nil {
		return
	}
	s.touch()
	if s.isClosing() {
		return
	}
	if !utf8.Valid(data) {
		s.closeWith(wire.CloseInvalidUTF8)
		return
	}
	if len(data) == 4 && string(data) == "ping" {
		if h.allow(s, "", true) {
			_ = s.out.enqueue(outgoing{data: []byte("pong"), raw: true, urgent: true})
		}
		return
	}
	if h.opts.MaxDepth > 0 && validate.TooDeep(data, h.opts.MaxDepth) {
		if h.allow(s, "", true) {
			h.obs.Handled("invalid", wire.CodeBadRequest, 0)
			h.sendError(s, "", &Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("frame nests deeper than %d levels", h.opts.MaxDepth)})
		}
		return
	}
	// The envelope is read before the rate limit so that a rate_limited
	// reply carries the request's id and the client can fail that request.
	env, e := decodeEnvelope(data)
	if !h.allow(s, env.ID, true) {
		return
	}
	if e != nil {
		h.obs.Handled("invalid", e.Code, 0)
		h.sendError(s, env.ID, e)
		return
	}
	if !s.dispatch(incoming{env: env, size: len(data)}) {
		h.sendError(s, env.ID, &Error{Code: wire.CodeRateLimited, Message: "too many requests waiting"})
	}
}

func (h *Hub) onBinary(ms *melody.Session, data []byte) {
	s := sessionOf(ms)
	if s == nil {
		return
	}
	s.touch()
	if s.isClosing() || !h.allow(s, "", true) {
		return
	}
	h.hmu.RLock()
	bin := h.binary
	h.hmu.RUnlock()
	if bin == nil {
		h.sendError(s, "", &Error{Code: wire.CodeUnsupported, Message: "binary frames are not supported here"})
		return
	}
	if !s.dispatch(incoming{binary: data, size: len(data)}) {
		h.sendError(s, "", &Error{Code: wire.CodeRateLimited, Message: "too many requests waiting"})
	}
}

// allow applies the rate limit: a frame over it gets rate_limited (reply is
// false for control frames, which get no answer), and RateLimitStrikes of
// those within a second close the session with 4429. A client a little over
// the rate is slowed down, a flood is cut off. It runs on the reader
// goroutine.
func (h *Hub) allow(s *Session, id string, reply bool) bool {
	if h.opts.RateLimit <= 0 {
		return true
	}
	if s.limiter == nil { // on the first frame: idle sessions need none
		s.limiter = rate.NewLimiter(rate.Limit(h.opts.RateLimit), h.opts.RateBurst)
	}
	if s.limiter.Allow() {
		return true
	}
	if now := time.Now().UnixNano(); now-s.strikesSince > int64(time.Second) {
		s.strikesSince, s.strikes = now, 0
	}
	s.strikes++
	h.obs.RateLimited()
	if int(s.strikes) >= h.opts.RateLimitStrikes {
		s.closeWith(wire.CloseRateLimited)
		return false
	}
	if reply {
		s.out.queueReply(encodeError(id, &Error{Code: wire.CodeRateLimited, Message: "slow down"}))
	}
	return false
}

// answerCost is the size of an answer that costs one token of the session's
// output budget: at the default rate a session's answers average at most
// 800 KiB/s, while rejoining a few rooms with a long replay each stays
// within the burst.
const answerCost = 16 << 10

// charge takes what an answer of n bytes costs from the session's output
// budget, a bucket of the rate limit's size of its own, going into debt if
// need be: the client's next requests are refused until it is paid. It runs
// on the session's handler goroutine.
func (s *Session) charge(n int) {
	o := &s.hub.opts
	tokens := n / answerCost
	if tokens == 0 || o.RateLimit <= 0 {
		return
	}
	if s.output == nil {
		s.output = rate.NewLimiter(rate.Limit(o.RateLimit), o.RateBurst)
	}
	s.output.ReserveN(time.Now(), min(tokens, o.RateBurst))
}

// inDebt reports whether large answers took more than the output budget
// holds. It runs on the session's handler goroutine.
func (s *Session) inDebt() bool {
	return s.output != nil && s.output.Tokens() < 0
}

// sendError answers a frame with an error, and closes the session with 1008
// after MaxInvalidFrames invalid frames in a row.
func (h *Hub) sendError(s *Session, id string, e *Error) {
	s.out.queueReply(encodeError(id, e))
	if !invalidFrame[e.Code] {
		// A refusal (forbidden, not_member, too_many_rooms, an
		// application's code) is an answer to a valid frame: a client
		// that gets twenty in a row is not broken, and 1008 would tell
		// it never to reconnect.
		return
	}
	if int(s.invalid.Add(1)) >= h.opts.MaxInvalidFrames {
		s.closeWith(wire.ClosePolicy)
	}
}

// invalidFrame holds the error codes of frames that break the protocol or
// the handler's schema: MaxInvalidFrames of them in a row close the session.
var invalidFrame = map[wire.Code]bool{
	wire.CodeBadRequest: true, wire.CodeUnknownType: true, wire.CodeValidationFailed: true, wire.CodeTooLarge: true, wire.CodeUnsupported: true,
}

// dispatch queues an inbound frame for the session's handler goroutine, so a
// slow handler never stalls reading (and thus heartbeats) while the
// session's frames are still handled one at a time, in order.
func (s *Session) dispatch(f incoming) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state >= draining {
		return true
	}
	o := &s.hub.opts
	if len(s.in) > 0 && (len(s.in) >= o.MaxPending || s.inBytes+f.size > o.MaxPendingBytes) {
		return false
	}
	s.in = append(s.in, f)
	s.inBytes += f.size
	if !s.handling {
		s.handling = true
		s.hub.running.add(1)
		go s.handleLoop()
	}
	return true
}

func (s *Session) handleLoop() {
	defer s.hub.running.add(-1)
	for {
		s.mu.Lock()
		if len(s.in) == 0 || s.state == gone {
			s.in = nil
			s.handling = false
			if s.state == draining {
				// The close frame waited for these frames' answers.
				s.releaseCloseLocked()
			}
			s.mu.Unlock()
			return
		}
		f := s.in[0]
		s.in[0] = incoming{}
		s.in = s.in[1:]
		s.inBytes -= f.size
		s.mu.Unlock()
		s.hub.handle(s, f)
		s.out.writeAnswers()
	}
}
