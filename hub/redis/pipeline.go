package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ginws/ginws/hub"
)

// Limits of one round trip of a lane. A batch is sent as soon as the one
// before it is answered; these only split a burst into several calls, so
// that no call keeps Redis busy for long.
const (
	maxBatch      = 256
	maxBatchBytes = 1 << 20
)

// Limits of what waits on one lane with Options.AsyncPublish.
const (
	maxQueued      = 16 * maxBatch
	maxQueuedBytes = 16 << 20
)

var (
	errClosed = errors.New("redis broker: closed")
	// errLead hands a waiting caller the lane (see send).
	errLead = errors.New("redis broker: lead the lane")
)

// The states of a publication.
const (
	queued    int32 = iota
	taken           // in a round trip
	abandoned       // its caller gave up before it was taken: it is never sent
	leading         // its caller was handed the lane
)

// publication is one message waiting for its lane's next round trip.
type publication struct {
	history bool
	// keys are the channel, or for history the meta and events keys and
	// then the channel.
	keys      []string
	head      []byte // its run's header (see header)
	payload   []byte
	action    bool               // no payload, and a run of its own
	hist      hub.HistoryOptions // of an event with history
	size      int
	partition int // of its room or user; -1 for the global channel
	state     atomic.Int32
	done      chan error
	err       error // the outcome of its round trip
}

// lane sends its messages in order: on a single Redis every message, on a
// cluster those of one partition (or, for the global channel, of none). A caller that finds the lane idle sends its message
// itself; the messages queued while its round trip is in flight go
// together in the next one, in one script call, sent by the first of their
// callers, and so on. Publishing costs Redis and both ends one round trip
// per batch instead of one per message, and the nodes that receive them
// get them in one read. A message waits for the round trip in flight (and
// more when over a batch is queued) but never for a timer; no goroutine
// is needed, except with AsyncPublish, whose callers do not wait: a
// drainer sends their batches (see enqueue).
type lane struct {
	global bool
	mu     sync.Mutex
	queue  []*publication
	busy   bool // a caller (or, with AsyncPublish, a drainer) is sending
	sent   int  // messages of the round trip under way
	// With AsyncPublish: the bytes queued, and a channel closed when a
	// batch is taken, for publishers that wait for room.
	queuedBytes int
	room        chan struct{}
	// Closed when a message is queued for a drainer that waits for one.
	wake chan struct{}
}

// drainerLinger is how long an AsyncPublish drainer waits for more before
// it stops: a goroutine started for each burst, which a round trip through
// go-redis makes grow its stack, cost a publisher a tenth of its CPU.
const drainerLinger = time.Second

// laneFor returns the lane of a partition: on a cluster, that of the
// master serving its slot now (go-redis's view, which it keeps up to
// date); a partition whose master is unknown (the cluster is down) gets
// the lane of "", whose messages fail like any others meanwhile. While a
// partition has messages on a lane, its next ones go there too, whatever
// the master now: after a failover, a message must not overtake one of
// the same room still waiting on the old master's lane (go-redis follows
// MOVED). Each message taken here is given back by release.
func (b *Broker) laneFor(ctx context.Context, partition int) *lane {
	switch {
	case partition < 0:
		return b.global
	case b.masters == nil:
		return b.single
	}
	b.lanesMu.Lock()
	if s := b.partitions[partition]; s.pending > 0 {
		b.partitions[partition] = stuck{s.lane, s.pending + 1}
		b.lanesMu.Unlock()
		return s.lane
	}
	b.lanesMu.Unlock()
	addr := ""
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	if m, err := b.client.(*goredis.ClusterClient).MasterForKey(ctx, partitionTag(partition)); err == nil {
		addr = m.Options().Addr
	}
	b.lanesMu.Lock()
	defer b.lanesMu.Unlock()
	if s := b.partitions[partition]; s.pending > 0 { // chosen meanwhile
		b.partitions[partition] = stuck{s.lane, s.pending + 1}
		return s.lane
	}
	l := b.masters[addr]
	if l == nil {
		l = &lane{}
		b.masters[addr] = l
	}
	b.partitions[partition] = stuck{l, 1}
	return l
}

// stuck is the lane of a partition's messages, while any is pending.
type stuck struct {
	lane    *lane
	pending int
}

// release gives back what laneFor took for ps, once they were sent, failed
// or given up.
func (b *Broker) release(ps ...*publication) {
	if b.masters == nil {
		return
	}
	b.lanesMu.Lock()
	defer b.lanesMu.Unlock()
	for _, p := range ps {
		if p.partition < 0 {
			continue // the global channel's
		}
		s := b.partitions[p.partition]
		if s.pending--; s.pending > 0 {
			b.partitions[p.partition] = s
		} else {
			delete(b.partitions, p.partition)
		}
	}
}

// send publishes p on its partition's lane. It waits for the round trips
// ahead of p (the one in flight, and more when over a batch is queued), up
// to ctx and PublishTimeout (then p is never sent), and then for p's own,
// up to PublishTimeout.
func (b *Broker) send(ctx context.Context, p *publication) error {
	if b.global == nil {
		return errors.New("redis broker: not started")
	}
	if b.opts.AsyncPublish {
		return b.enqueue(ctx, p)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	l := b.laneFor(ctx, p.partition)
	// Sent, failed or given up (then never sent) when this returns.
	defer b.release(p)
	if err := b.open(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	l.queue = append(l.queue, p)
	if !l.busy {
		l.busy = true
		l.mu.Unlock()
		return b.lead(l, p)
	}
	p.done = make(chan error, 1)
	l.mu.Unlock()
	var err error
	select {
	case err = <-p.done:
	case <-ctx.Done():
		if p.state.CompareAndSwap(queued, abandoned) {
			// Sent or not, as a request that timed out on the network
			// would be; unsent, it never will be.
			return ctx.Err()
		}
		err = <-p.done // taken, or handed the lane
	}
	if err == errLead {
		return b.lead(l, p)
	}
	return err
}

// open reports why a message cannot be sent now: the broker or ctx is
// done.
func (b *Broker) open(ctx context.Context) error {
	if b.ctx.Err() != nil {
		return errClosed
	}
	return ctx.Err()
}

// enqueue queues p on its lane for AsyncPublish, waiting while the lane
// is full (up to ctx and PublishTimeout), and starts the lane's drainer if
// none runs, or wakes it. The drainer releases p, or enqueue when p is not
// queued.
func (b *Broker) enqueue(ctx context.Context, p *publication) error {
	if err := b.open(ctx); err != nil {
		return err
	}
	l := b.laneFor(ctx, p.partition)
	l.mu.Lock()
	for len(l.queue) >= maxQueued || l.queuedBytes+p.size > maxQueuedBytes && len(l.queue) > 0 {
		if l.room == nil {
			l.room = make(chan struct{})
		}
		room := l.room
		l.mu.Unlock()
		// A timer only for a publisher that waits.
		wctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
		select {
		case <-room:
		case <-wctx.Done():
		}
		cancel()
		if err := wctx.Err(); err != nil {
			b.release(p)
			return fmt.Errorf("the queue for Redis is full: %w", err)
		}
		l.mu.Lock()
	}
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	start := !l.busy
	if start {
		// Under b.mu: Close must not be waiting for the drainers yet.
		b.mu.Lock()
		closed := b.closed
		if !closed {
			b.wg.Add(1)
		}
		b.mu.Unlock()
		if closed {
			l.mu.Unlock()
			b.release(p)
			return errClosed
		}
	}
	l.queue = append(l.queue, p)
	l.queuedBytes += p.size
	l.busy = true
	l.mu.Unlock()
	if start {
		go b.drain(l)
	}
	return nil
}

// drain sends l's batches until its queue has stayed empty for
// drainerLinger (AsyncPublish). Close waits for it: its last round trips
// fail at once once the broker's context ends, and it waits no more.
func (b *Broker) drain(l *lane) {
	defer b.wg.Done()
	var batch []*publication
	for waited := false; ; {
		// Taking and going idle under one lock: a message queued in
		// between would find the lane busy and start no drainer.
		l.mu.Lock()
		batch = l.takeLocked(batch[:0])
		for _, p := range batch {
			l.queuedBytes -= p.size
		}
		if l.room != nil {
			close(l.room)
			l.room = nil
		}
		if len(batch) == 0 && (waited || b.ctx.Err() != nil) {
			l.sent, l.busy, l.wake = 0, false, nil
			l.mu.Unlock()
			return
		}
		if len(batch) == 0 {
			wake := make(chan struct{})
			l.wake = wake
			l.mu.Unlock()
			select {
			case <-wake:
			case <-time.After(drainerLinger):
				waited = true
			case <-b.ctx.Done():
			}
			continue
		}
		waited = false
		l.mu.Unlock()
		b.flush(l, batch)
		var err error
		lost := 0
		for _, p := range batch {
			if p.err != nil {
				err = p.err
				lost++
			}
		}
		b.release(batch...)
		b.unsentReport(lost, err)
		clear(batch)
	}
}

// unsentReport counts the messages AsyncPublish lost and reports them to
// the hub at most once a second: an outage (or, on a cluster, a master down
// while the others answer) is not reported once per batch. Losses held
// back are reported a second after the last report, by a timer; once Close
// has begun, at once.
func (b *Broker) unsentReport(lost int, err error) {
	b.mu.Lock()
	b.unsent += lost
	if err != nil {
		b.unsentErr = err
	}
	n, err := b.unsent, b.unsentErr
	if n == 0 {
		b.mu.Unlock()
		return
	}
	if wait := time.Second - time.Since(b.reported); wait > 0 && !b.closed {
		if b.unsentTimer == nil {
			b.unsentTimer = time.AfterFunc(wait, func() {
				b.mu.Lock()
				b.unsentTimer = nil
				b.mu.Unlock()
				b.unsentReport(0, nil)
			})
		}
		b.mu.Unlock()
		return
	}
	b.unsent, b.unsentErr, b.reported = 0, nil, time.Now()
	b.mu.Unlock()
	b.report(fmt.Errorf("redis broker: %d messages were not published: %w", n, err))
}

// lead sends the next batch, which starts with p (the first caller, or the
// one handed the lane, is at the head of the queue), then hands the lane
// on.
func (b *Broker) lead(l *lane, p *publication) error {
	// The publishers woken by the last round trip, or started with p,
	// are runnable: let them queue their next messages first. With 8
	// handlers emitting at once this took a third off the script calls
	// and a fifth off the CPU of the nodes and Redis; a lone publisher
	// finds nothing to yield to.
	runtime.Gosched()
	batch := l.take(nil)
	b.flush(l, batch)
	for _, q := range batch {
		if q != p {
			q.done <- q.err
		}
	}
	l.handOff()
	return p.err
}

// take moves the next batch from the queue to batch, leaving out the
// messages whose callers gave up.
func (l *lane) take(batch []*publication) []*publication {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.takeLocked(batch)
}

func (l *lane) takeLocked(batch []*publication) []*publication {
	n, bytes := 0, 0
	for ; n < len(l.queue) && len(batch) < maxBatch && (bytes < maxBatchBytes || len(batch) == 0); n++ {
		p := l.queue[n]
		if p.state.CompareAndSwap(queued, taken) || p.state.CompareAndSwap(leading, taken) {
			batch = append(batch, p)
			bytes += p.size
		}
	}
	l.sent = len(batch)
	l.queue = l.shift(n)
	return batch
}

// shift drops the first n messages of the queue.
func (l *lane) shift(n int) []*publication {
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	if cap(l.queue) > 4*maxBatch && rest < maxBatch {
		return append([]*publication(nil), l.queue[:rest]...) // a queue keeps its peak size
	}
	return l.queue[:rest]
}

// handOff gives the lane to the first caller still waiting in the queue,
// or leaves it idle.
func (l *lane) handOff() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = 0
	for i, p := range l.queue {
		if p.state.CompareAndSwap(queued, leading) {
			l.queue = l.shift(i)
			p.done <- errLead
			return
		}
	}
	l.queue = l.shift(len(l.queue))
	l.busy = false
}

// flush sends one batch in one round trip, and records each message's
// outcome: the global channel's messages as a pipeline of PUBLISH; on a
// single Redis the rest as one call of publishBatch; on a cluster, where a
// script's keys share a slot, a pipeline of one call per partition.
func (b *Broker) flush(l *lane, batch []*publication) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
	defer cancel()
	if l.global {
		_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, run := range runs(batch) {
				p.Publish(ctx, run[0].keys[0], encodeRun(run[0].head, packed(run)))
			}
			return nil
		})
		setErr(batch, err)
		return
	}
	if b.masters == nil {
		setErr(batch, b.publishBatch(ctx, batch))
		return
	}
	groups := byPartition(batch)
	if len(groups) == 1 {
		setErr(batch, b.publishBatch(ctx, batch))
		return
	}
	cmds := make([]*goredis.Cmd, len(groups))
	_, _ = b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, g := range groups {
			keys, args := b.batchArgs(g)
			cmds[i] = publishBatch.EvalSha(ctx, p, keys, args...)
		}
		return nil
	})
	for i, g := range groups {
		if err := cmds[i].Err(); goredis.HasErrorPrefix(err, "NOSCRIPT") {
			// A master new since the script was loaded (a promoted
			// replica) has not seen it; nothing ran.
			setErr(g, b.publishBatch(ctx, g))
		} else {
			setErr(g, batchErr(len(g), err))
		}
	}
}

// publishBatch runs one call of the script for batch.
func (b *Broker) publishBatch(ctx context.Context, batch []*publication) error {
	keys, args := b.batchArgs(batch)
	return batchErr(len(batch), publishBatch.Run(ctx, b.client, keys, args...).Err())
}

// batchErr is the error of a script call that carried n messages.
func batchErr(n int, err error) error {
	if err == nil || errors.Is(err, goredis.Nil) {
		return nil
	}
	return fmt.Errorf("%d messages: %w", n, err)
}

// batchArgs returns the keys and arguments of the script for batch.
func (b *Broker) batchArgs(batch []*publication) ([]string, []any) {
	var keys []string
	args := []any{b.publishCommand(), epochCandidate()}
	for _, run := range runs(batch) {
		p := run[0]
		keys = append(keys, p.keys...)
		if p.history {
			args = append(args, "h", p.head, packed(run), len(run), p.hist.Size, ttlMillis(p.hist))
		} else {
			args = append(args, "p", encodeRun(p.head, packed(run)))
		}
	}
	return keys, args
}

// runs splits batch into runs (see codecVersion): the messages in a row to
// one channel with one header, and each action alone. A run of events with
// history holds no more than the history's size: the stream keeps whole
// runs, and a room that keeps a few events must not keep a batch's worth.
func runs(batch []*publication) [][]*publication {
	var out [][]*publication
	start := 0
	for i := 1; i <= len(batch); i++ {
		if i == len(batch) || !sameRun(batch[i-1], batch[i]) || batch[i].history && i-start >= batch[i].hist.Size {
			out = append(out, batch[start:i])
			start = i
		}
	}
	return out
}

func sameRun(a, b *publication) bool {
	return !a.action && !b.action && a.history == b.history && a.hist == b.hist &&
		a.keys[len(a.keys)-1] == b.keys[len(b.keys)-1] && bytes.Equal(a.head, b.head)
}

// packed returns the payloads of a run as it carries them.
func packed(run []*publication) []byte {
	if run[0].action {
		return nil
	}
	payloads := make([][]byte, len(run))
	for i, p := range run {
		payloads[i] = p.payload
	}
	return pack(payloads...)
}

// byPartition splits batch by partition, keeping the order of each.
func byPartition(batch []*publication) [][]*publication {
	var groups [][]*publication
	index := map[int]int{}
	for _, p := range batch {
		i, ok := index[p.partition]
		if !ok {
			i = len(groups)
			index[p.partition] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], p)
	}
	return groups
}

func setErr(batch []*publication, err error) {
	for _, p := range batch {
		p.err = err
	}
}

// publishBatch publishes a partition's runs in order (ARGV[1] is PUBLISH,
// or SPUBLISH on a cluster, where the partition's keys and channels share a
// slot; ARGV[2] the epoch of a history that has none). A run without
// history ("p") is its channel and its encoded form. A run of events with
// history ("h": header, payloads, count, size, TTL in milliseconds) gets
// the room's next offsets, is kept as one stream entry, and goes out with
// its epoch and first offset after its header: Redis runs a script alone,
// so every node receives a room's events in offset order. The epoch and
// the offset are shorter than 128 bytes, so one byte is their length, as
// the codec's uvarint. Nothing here is done per event: a run costs one
// XADD and one PUBLISH whatever its length.
//
// An entry's ID is its last offset (and 0), and its fields are t (its time
// in milliseconds), n (its number of events) and f (their payloads), so
// that offsets, not times, find entries: the stream is trimmed to the
// entry that holds the Size-th newest event, each time a quarter of the
// size has been added, and reads filter by age. Each room's meta is read
// once per call and written once at its end, with the TTL. A stream ahead
// of its meta (a script that failed after its XADD) is dropped rather
// than stop the room, and the history gets a new epoch: the offsets of the
// events dropped were published already and are given again, and clients
// that saw them get recovered:false. Only a room's first XADD of a call can
// fail, before anything of the room was published.
var publishBatch = goredis.NewScript(metaLua + `
local cmd, candidate = ARGV[1], ARGV[2]
local rooms, order = {}, {}
local now
local k, a = 1, 3
while a <= #ARGV do
  if ARGV[a] == 'p' then
    redis.call(cmd, KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  else
    local head, packed, count, size, ttl = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4], ARGV[a + 5]
    local r = rooms[KEYS[k]]
    if not r then
      local ep, n = meta(KEYS[k], KEYS[k + 1], candidate, ttl)
      r = {ep = ep, n = n, from = n, events = KEYS[k + 1]}
      rooms[KEYS[k]] = r
      order[#order + 1] = KEYS[k]
    end
    now = now or clock()
    local first = string.format('%d', r.n + 1)
    r.n, r.ttl, r.size = r.n + count, ttl, tonumber(size)
    local id = string.format('%d', r.n) .. '-0'
    local added = redis.pcall('XADD', r.events, id, 't', now, 'n', count, 'f', packed)
    if type(added) == 'table' and added.err then
      redis.call('DEL', r.events)
      redis.call('XADD', r.events, id, 't', now, 'n', count, 'f', packed)
      r.ep = candidate
    end
    redis.call(cmd, KEYS[k + 2], head .. string.char(#r.ep) .. r.ep .. string.char(#first) .. first .. packed)
    k, a = k + 3, a + 6
  end
end
for _, key in ipairs(order) do
  local r = rooms[key]
  redis.call('SET', key, r.ep .. ' ' .. replid() .. ' ' .. string.format('%d', r.n), 'PX', r.ttl)
  redis.call('PEXPIRE', r.events, r.ttl)
  local step = math.max(1, math.floor(r.size / 4))
  if r.n > r.size and math.floor(r.n / step) > math.floor(r.from / step) then
    redis.call('XTRIM', r.events, 'MINID', string.format('%d', r.n - r.size + 1))
  end
end
return #KEYS`)
