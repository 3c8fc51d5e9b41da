package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ginws/ginws/hub"
)

var _ hub.HistoryStore = (*Broker)(nil)

// ttlMillis is the history's TTL for Redis: at least a millisecond, since
// a script that failed on a zero expiry would have published the events of
// its batch before it without keeping their offsets.
func ttlMillis(o hub.HistoryOptions) int64 {
	if o.TTL > 0 {
		return max(1, o.TTL.Milliseconds())
	}
	return hub.DefaultHistoryTTL.Milliseconds()
}

func epochCandidate() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// metaLua defines meta(key, events, candidate, ttl), which returns a room's
// epoch and newest offset from its meta key: a new epoch when there is
// none, or when another master wrote it. Redis replicates asynchronously: a
// replica promoted after its master died may lack the newest events, and
// would give their offsets again to other events; a client that saw the
// lost ones must not resume as if nothing had happened. The master's
// replication id, which a promotion or restart changes, is kept in the
// meta to notice; a script reads it once. INFO needs the ACL category
// @dangerous (or +info); without it the epoch is kept as it was. Events
// without a meta belong to a lost history: they go.
const metaLua = `
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local rid
local function replid()
  if not rid then
    local info = redis.pcall('INFO', 'replication')
    rid = type(info) == 'string' and string.match(info, 'master_replid:(%x+)') or 'unknown'
  end
  return rid
end
local function meta(key, events, candidate, ttl)
  local cur = redis.call('GET', key)
  local ep, id, n
  if cur then ep, id, n = string.match(cur, '^(%S+) (%S+) (%d+)$') end
  if not ep then
    redis.call('DEL', events)
    ep, n = candidate, 0
  end
  n = tonumber(n)
  if id ~= replid() then
    ep = candidate
    redis.call('SET', key, ep .. ' ' .. replid() .. ' ' .. string.format('%d', n), 'PX', ttl)
  end
  return ep, n
end
`

// readHistory returns {epoch, offset, ok, then each entry's last offset
// and payloads}: the entries that hold the events after ARGV[2] (or, with
// ARGV[3] = 'latest', the newest ARGV[2] events), never more than the
// history's size (ARGV[6]) and none older than its TTL (ARGV[5]). The
// caller takes the events it asked for out of them (see publishBatch).
var readHistory = goredis.NewScript(metaLua + `
local ep, n = meta(KEYS[1], KEYS[2], ARGV[4], ARGV[5])
local size, oldest = tonumber(ARGV[6]), clock() - tonumber(ARGV[5])
local out, from = {ep, n, 1}, nil
if ARGV[3] == 'latest' then
  from = n - math.min(tonumber(ARGV[2]), size) + 1
else
  local since = tonumber(ARGV[2])
  if ep ~= ARGV[1] or since > n or n - since > size then return {ep, n, 0} end
  from = since + 1
end
if from > n then return out end
local entries = redis.call('XRANGE', KEYS[2], string.format('%d', math.max(from, 1)), '+')
for i, e in ipairs(entries) do
  local last, f = tonumber(string.match(e[1], '^%d+')), e[2]
  if tonumber(f[2]) >= oldest then
    out[#out + 1] = last
    out[#out + 1] = f[6]
  elseif ARGV[3] ~= 'latest' then
    return {ep, n, 0}
  end
  if i == 1 and ARGV[3] ~= 'latest' and last - tonumber(f[4]) + 1 > from then return {ep, n, 0} end
end
if ARGV[3] ~= 'latest' and (#entries == 0 or tonumber(string.match(entries[#entries][1], '^%d+')) ~= n) then
  return {ep, n, 0}
end
return out`)

// PublishHistory implements hub.History: the event reaches every node,
// this one included, through Redis, in offset order. It goes in its
// partition's next round trip (see lane).
func (b *Broker) PublishHistory(ctx context.Context, m hub.Message, opts hub.HistoryOptions) error {
	if opts.Size <= 0 {
		return errors.New("redis broker: publish with history: the history's size must be positive")
	}
	// Each node adds the offset to the event: it must be an object. One
	// that is not would make its whole run, and the history, unreadable.
	if p := m.Payload; len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return errors.New("redis broker: publish with history: the payload is not an encoded event ({...})")
	}
	h := header(b.node, m)
	p := &publication{history: true, head: h, payload: m.Payload, hist: opts, size: len(m.Payload) + len(h),
		partition: b.partition(m.Room), keys: append(b.historyKeys(m.Room), b.channelRoom(m.Room))}
	if err := b.send(ctx, p); err != nil {
		return fmt.Errorf("redis broker: publish with history: %w", err)
	}
	return nil
}

func (b *Broker) publishCommand() string {
	if b.shards != nil {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// Since implements hub.HistoryStore.
func (b *Broker) Since(ctx context.Context, room string, since hub.Position, opts hub.HistoryOptions) ([][]byte, hub.Position, bool, error) {
	return b.read(ctx, room, since.Epoch, since.Offset, "since", opts)
}

// Latest implements hub.HistoryStore.
func (b *Broker) Latest(ctx context.Context, room string, n int, opts hub.HistoryOptions) ([][]byte, hub.Position, error) {
	frames, pos, _, err := b.read(ctx, room, "", uint64(max(n, 0)), "latest", opts)
	return frames, pos, err
}

func (b *Broker) read(ctx context.Context, room, epoch string, n uint64, mode string, opts hub.HistoryOptions) ([][]byte, hub.Position, bool, error) {
	if opts.Size <= 0 {
		return nil, hub.Position{}, false, errors.New("redis broker: read history: the history's size must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	res, err := readHistory.Run(ctx, b.client, b.historyKeys(room), epoch, n, mode, epochCandidate(), ttlMillis(opts), opts.Size).Slice()
	if err != nil {
		return nil, hub.Position{}, false, fmt.Errorf("redis broker: read history: %w", err)
	}
	if len(res) < 3 {
		return nil, hub.Position{}, false, errors.New("redis broker: short history reply")
	}
	pos := hub.Position{}
	pos.Epoch, _ = res[0].(string)
	offset, _ := res[1].(int64)
	pos.Offset = uint64(offset)
	ok, _ := res[2].(int64)
	var frames [][]byte
	for i := 3; i+1 < len(res); i += 2 {
		last, _ := res[i].(int64)
		run, _ := res[i+1].(string)
		payloads, err := splitPayloads(run, true)
		if err != nil || uint64(len(payloads)) > uint64(last) {
			return nil, hub.Position{}, false, errors.New("redis broker: read history: malformed entry")
		}
		off := uint64(last) - uint64(len(payloads)) + 1
		for _, p := range payloads {
			if mode == "latest" || off > n {
				frames = append(frames, hub.WithOffset(p, off))
			}
			off++
		}
	}
	if want := min(int(n), opts.Size); mode == "latest" && len(frames) > want {
		frames = frames[len(frames)-want:]
	}
	return frames, pos, ok == 1, nil
}
