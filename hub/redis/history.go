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

// readHistory returns {epoch, offset, ok, events...}: the events after
// ARGV[2] (or, with ARGV[3] = 'latest', the newest ARGV[2] events), never
// more than the history's size (ARGV[6]), which the stream may exceed by a
// quarter until it is trimmed (see publishBatch).
var readHistory = goredis.NewScript(metaLua + `
local ep, n = meta(KEYS[1], KEYS[2], ARGV[4], ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XTRIM', KEYS[2], 'MINID', tostring(now - tonumber(ARGV[5])))
local want
if ARGV[3] == 'latest' then
  want = math.min(tonumber(ARGV[2]), tonumber(ARGV[6]))
else
  local since = tonumber(ARGV[2])
  if ep ~= ARGV[1] or since > n or n - since > tonumber(ARGV[6]) then return {ep, n, 0} end
  want = n - since
end
local out = {ep, n, 1}
if want <= 0 then return out end
local entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', want)
if ARGV[3] ~= 'latest' and #entries < want then return {ep, n, 0} end
for i = #entries, 1, -1 do
  local fields = entries[i][2]
  for j = 1, #fields, 2 do
    if fields[j] == 'f' then out[#out + 1] = fields[j + 1] end
  end
end
return out`)

// PublishHistory implements hub.History: the event reaches every node,
// this one included, through Redis, in offset order. It goes in its
// partition's next round trip (see lane).
func (b *Broker) PublishHistory(ctx context.Context, m hub.Message, opts hub.HistoryOptions) error {
	if opts.Size <= 0 {
		return errors.New("redis broker: publish with history: the history's size must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	h := header(b.node, m)
	p := &publication{history: true, size: len(m.Payload) + len(h), partition: b.partition(m.Room),
		keys: append(b.historyKeys(m.Room), b.channelRoom(m.Room)),
		args: []any{m.Payload, h, opts.Size, ttlMillis(opts)}}
	if err := b.send(ctx, b.laneFor(ctx, p.partition), p); err != nil {
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
	frames, pos, _, err := b.read(ctx, room, "", uint64(n), "latest", opts)
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
	frames := make([][]byte, 0, len(res)-3)
	for _, f := range res[3:] {
		s, _ := f.(string)
		frames = append(frames, []byte(s))
	}
	return frames, pos, ok == 1, nil
}
