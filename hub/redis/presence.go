package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ginws/ginws/hub"
)

func memberKey(m hub.Member) string { return m.Session + "|" + m.User }

func (b *Broker) expiry() float64 {
	return float64(time.Now().Add(b.opts.PresenceTTL).UnixMilli())
}

// AddMember records m in room for every node to see.
func (b *Broker) AddMember(ctx context.Context, room string, m hub.Member) error {
	b.mu.Lock()
	if b.members[room] == nil {
		b.members[room] = make(map[string]struct{})
	}
	b.members[room][memberKey(m)] = struct{}{}
	b.mu.Unlock()
	return b.touch(ctx, b.keyPresence(room), memberKey(m))
}

// touch sets a sorted-set entry's expiry and keeps the key itself from
// outliving its entries.
func (b *Broker) touch(ctx context.Context, key, member string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	_, err := b.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZAdd(ctx, key, goredis.Z{Score: b.expiry(), Member: member})
		p.PExpire(ctx, key, 2*b.opts.PresenceTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis broker: %w", err)
	}
	return nil
}

// RemoveMember removes m from room.
func (b *Broker) RemoveMember(ctx context.Context, room string, m hub.Member) error {
	b.mu.Lock()
	if set := b.members[room]; set != nil {
		delete(set, memberKey(m))
		if len(set) == 0 {
			delete(b.members, room)
		}
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	if err := b.client.ZRem(ctx, b.keyPresence(room), memberKey(m)).Err(); err != nil {
		return fmt.Errorf("redis broker: %w", err)
	}
	return nil
}

// Members lists room's members on every node whose entries have not expired.
func (b *Broker) Members(ctx context.Context, room string) ([]hub.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	entries, err := b.client.ZRangeByScore(ctx, b.keyPresence(room), &goredis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis broker: %w", err)
	}
	out := make([]hub.Member, 0, len(entries))
	for _, e := range entries {
		session, user, _ := strings.Cut(e, "|")
		out = append(out, hub.Member{User: user, Session: session})
	}
	return out, nil
}

// CountMembers counts room's members on every node whose entries have not
// expired, without listing them.
func (b *Broker) CountMembers(ctx context.Context, room string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	n, err := b.client.ZCount(ctx, b.keyPresence(room), "("+now, "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("redis broker: %w", err)
	}
	return int(n), nil
}

// acquire atomically drops expired reservations, checks the count and adds one.
var acquire = goredis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`)

// AcquireSession takes one of user's max session slots across all nodes.
func (b *Broker) AcquireSession(ctx context.Context, user string, max int) (func(), error) {
	var raw [9]byte
	_, _ = rand.Read(raw[:])
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	key := b.keySessions(user)
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	ok, err := acquire.Run(ctx, b.client, []string{key},
		time.Now().UnixMilli(), max, int64(b.expiry()), id, (2 * b.opts.PresenceTTL).Milliseconds()).Int()
	if err != nil {
		return nil, fmt.Errorf("redis broker: %w", err)
	}
	if ok == 0 {
		return nil, hub.ErrTooManySessions
	}
	b.mu.Lock()
	b.sessions[id] = user
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.sessions, id)
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.PublishTimeout)
		defer cancel()
		if err := b.client.ZRem(ctx, key, id).Err(); err != nil {
			b.report(fmt.Errorf("redis broker: release session slot of %q: %w", user, err))
		}
	}, nil
}

// refresh renews this node's presence entries and session slots every
// third of PresenceTTL, so they expire only when the node is gone: one
// ZADD per key (per refreshBatch entries), however many of this node's
// sessions it holds, in pipelines of at most refreshBatch keys.
func (b *Broker) refresh() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		entries := make(map[string][]any, len(b.members)+len(b.sessions))
		for room, set := range b.members {
			key := b.keyPresence(room)
			for m := range set {
				entries[key] = append(entries[key], m)
			}
		}
		for id, user := range b.sessions {
			key := b.keySessions(user)
			entries[key] = append(entries[key], id)
		}
		b.mu.Unlock()
		if len(entries) == 0 {
			continue
		}
		if err := b.renew(entries); err != nil && b.ctx.Err() == nil {
			b.report(fmt.Errorf("redis broker: refresh presence: %w", err))
		}
	}
}

const refreshBatch = 1000

// renew sets a new expiry on the entries of each key, and on the key.
func (b *Broker) renew(entries map[string][]any) error {
	var errs []error
	keys := make([]string, 0, min(len(entries), refreshBatch))
	flush := func() {
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.PublishTimeout)
		defer cancel()
		exp := b.expiry()
		_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, key := range keys {
				// Without XX: entries a restarted Redis lost come back.
				for ms := range slices.Chunk(entries[key], refreshBatch) {
					args := make([]any, 0, 2+2*len(ms))
					args = append(args, "ZADD", key)
					for _, m := range ms {
						args = append(args, exp, m)
					}
					p.Do(ctx, args...)
				}
				p.PExpire(ctx, key, 2*b.opts.PresenceTTL)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		keys = keys[:0]
	}
	for key := range entries {
		if keys = append(keys, key); len(keys) == refreshBatch {
			flush()
		}
	}
	if len(keys) > 0 {
		flush()
	}
	return errors.Join(errs...)
}
