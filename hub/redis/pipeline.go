package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// Limits of one round trip of a lane. A batch is sent as soon as the one
// before it is answered; these only split a burst into several calls, so
// that no call keeps Redis busy for long.
const (
	maxBatch      = 256
	maxBatchBytes = 1 << 20
)

var errClosed = errors.New("redis broker: closed")

// publication is one message waiting for its lane's next round trip.
type publication struct {
	history bool
	// keys are the channel, or for history the counter, stream and epoch
	// keys and then the channel.
	keys []string
	// args: for a plain message its encoded form; for history the
	// payload, the header, the size and the TTL in milliseconds.
	args []any
	size int
	done chan error
	// abandoned: the caller stopped waiting before it was sent, so it is
	// not sent at all.
	abandoned atomic.Bool
}

// lane sends the messages of one partition (or, for the global channel, of
// none) in order: each round trip carries every message queued while the
// one before it was in flight, in one script call. Publishing costs Redis
// and both ends one round trip per batch instead of one per message, and
// the nodes that receive them get them in one read. A message waits for
// at most one round trip besides its own, and never for a timer.
type lane struct {
	global bool
	wake   chan struct{} // a send that finds the lane idle
	mu     sync.Mutex
	queue  []*publication
	sent   int // messages of the round trip under way
	closed bool
}

func newLane(global bool) *lane { return &lane{global: global, wake: make(chan struct{}, 1)} }

// laneFor returns the lane of a room or user name.
func (b *Broker) laneFor(name string) *lane {
	if b.lanes == nil {
		return nil
	}
	return b.lanes[b.partition(name)]
}

// send queues p on l and waits for its round trip, or for ctx.
func (b *Broker) send(ctx context.Context, l *lane, p *publication) error {
	if l == nil {
		return errors.New("redis broker: not started")
	}
	p.done = make(chan error, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	l.queue = append(l.queue, p)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// Sent or not, as a request that timed out on the network
		// would be; unsent, it never will be.
		p.abandoned.Store(true)
		return ctx.Err()
	}
}

// run is a lane's sender, which Close stops; what is still queued then
// fails with errClosed.
func (b *Broker) run(l *lane) {
	defer b.wg.Done()
	var batch []*publication
	for {
		select {
		case <-l.wake:
		case <-b.ctx.Done():
			l.mu.Lock()
			l.closed = true
			for _, p := range l.queue {
				p.done <- errClosed
			}
			l.queue = nil
			l.mu.Unlock()
			return
		}
		for {
			batch = l.take(batch[:0])
			if len(batch) == 0 {
				break
			}
			err := b.flush(l, batch)
			for i, p := range batch {
				p.done <- err
				batch[i] = nil
			}
		}
	}
}

// take moves the next batch from the queue to batch, leaving out the
// messages whose callers gave up.
func (l *lane) take(batch []*publication) []*publication {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, bytes := 0, 0
	for ; n < len(l.queue) && len(batch) < maxBatch && (bytes < maxBatchBytes || len(batch) == 0); n++ {
		if p := l.queue[n]; !p.abandoned.Load() {
			batch = append(batch, p)
			bytes += p.size
		}
	}
	l.sent = len(batch)
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	if cap(l.queue) > 4*maxBatch && rest < maxBatch {
		l.queue = append([]*publication(nil), l.queue...) // a queue keeps its peak size
	}
	return batch
}

// flush sends one batch in one round trip: the global channel's messages
// as a pipeline of PUBLISH, a partition's as one call of publishBatch.
func (b *Broker) flush(l *lane, batch []*publication) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
	defer cancel()
	if l.global {
		_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, m := range batch {
				p.Publish(ctx, m.keys[0], m.args[0])
			}
			return nil
		})
		return err
	}
	var keys []string
	args := []any{b.publishCommand(), epochCandidate()}
	for _, m := range batch {
		keys = append(keys, m.keys...)
		if m.history {
			args = append(args, "h")
		} else {
			args = append(args, "p")
		}
		args = append(args, m.args...)
	}
	if err := publishBatch.Run(ctx, b.client, keys, args...).Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("%d messages: %w", len(batch), err)
	}
	return nil
}

// publishBatch publishes a partition's messages in order (ARGV[1] is PUBLISH,
// or SPUBLISH on a cluster, where the partition's keys and channels share a
// slot; ARGV[2] the epoch of a history that has none). A plain message ("p")
// is its channel and its encoded form. An event with history ("h") gets the
// room's next offset, is kept, trims the history by count and age, and goes
// out with its epoch and offset appended to its header: Redis runs a script
// alone, so every node receives a room's events in offset order. The epoch
// and the offset are shorter than 128 bytes, so one byte is their length,
// as the codec's uvarint.
var publishBatch = goredis.NewScript(epochLua + `
local cmd, candidate = ARGV[1], ARGV[2]
local now
local k, a = 1, 3
while a <= #ARGV do
  if ARGV[a] == 'p' then
    redis.call(cmd, KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  else
    local payload, head, size, ttl = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
    local ep = epoch(KEYS[k + 2], candidate, ttl)
    local n = redis.call('INCR', KEYS[k])
    local f = string.sub(payload, 1, -2) .. ',"offset":' .. n .. '}'
    redis.call('XADD', KEYS[k + 1], 'MAXLEN', size, '*', 'o', n, 'f', f)
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    redis.call('XTRIM', KEYS[k + 1], 'MINID', tostring(now - tonumber(ttl)))
    for i = 0, 2 do redis.call('PEXPIRE', KEYS[k + i], ttl) end
    local off = tostring(n)
    redis.call(cmd, KEYS[k + 3], head .. string.char(#ep) .. ep .. string.char(#off) .. off .. f)
    k, a = k + 4, a + 5
  end
end
return #KEYS`)
