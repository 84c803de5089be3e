package redis

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/store"
)

// The due hints spare Due reading the 1024 due indexes at every call (see
// Aggregates in the package documentation). The hints key holds a member
// per bucket (its number in hex, as in the bucket tag), scored by a lower
// bound of the earliest score in the bucket's due index; a bucket without
// a member has an empty index, but for the entries of a writer that failed
// before its hint update, which the repair finds. The gens key counts, per
// bucket, the hint updates that writers made (hintScript). Both keys share
// the {due} hash tag, so that one script reads and changes both.
//
// Why a hint stays a lower bound of every entry whose writer updated it:
//
//   - A writer runs its compare-and-swap, which puts an entry of score w in
//     a bucket's index, and only after it has run, hintScript, which
//     increments the bucket's generation and lowers its hint to at most w,
//     in one step. Delete, Expire and a write that takes an id out of the
//     index only remove entries, which can only raise the bucket's
//     earliest score: they leave the hints as they are.
//   - Due raises a hint (tightens it to the earliest score m it read) only
//     in tightenScript, and only if the generation is still the one it read
//     before it read the index. Take an entry w < m that the read missed:
//     its compare-and-swap ran after the read, so its hint update runs
//     after Due read the generation. If the update ran before the
//     tightening, the generation differs and the tightening only lowers
//     the hint (to at most m, a score it read, which is always safe); if
//     it runs after, it lowers the hint to at most w itself. Entries the
//     read saw are at least m. Either way no entry is left with a hint
//     above it.
//   - A writer that fails between its compare-and-swap and its hint update
//     (or a process of an earlier version, which makes none) leaves an
//     entry that may have no hint below it. Due reads every bucket's
//     earliest score at its first call on a Store and then every
//     dueRepairEvery (repairHints), and lowers or sets the hints from what
//     it read, under the same rule; such a profile is returned that much
//     late at most.

// dueRepairEvery is how often Due reads the earliest score of every
// bucket's due index to repair the hints, and so bounds how late it
// returns a profile whose writer failed between its compare-and-swap and
// its hint update: 1024 commands every five minutes, about 200 a minute,
// against a lateness of minutes for a recheck that can wait that long.
const dueRepairEvery = 5 * time.Minute

// hintsKey and gensKey are the keys of the due hints and of their
// generations: outside the buckets, in one slot.
func (s *Store) hintsKey() string { return s.prefix + "{due}:hints" }
func (s *Store) gensKey() string  { return s.prefix + "{due}:gens" }

func (s *Store) hintKeys() []string { return []string{s.hintsKey(), s.gensKey()} }

func bucketHex(b uint32) string { return strconv.FormatUint(uint64(b), 16) }

// hintScript records writes to due indexes. KEYS: hints, gens. ARGV:
// pairs of a bucket in hex and the earliest score written to its index;
// for each it increments the bucket's generation and lowers its hint to
// the score, adding it if absent (ZADD LT, Redis 6.2). Both change in one
// step, so that a Due that reads the generation sees any hint update made
// since (see the comment at the top of this file).
var hintScript = goredis.NewScript(`
for i = 1, #ARGV, 2 do
	redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
	redis.call('ZADD', KEYS[1], 'LT', ARGV[i + 1], ARGV[i])
end
return 0
`)

// tightenScript sets hints from what Due read. KEYS: hints, gens. ARGV:
// triples of a bucket in hex, its generation when Due read it ('0' for
// none) before reading the bucket's index, and the earliest score of the
// index (” if empty). If the generation is unchanged, no writer updated
// the hint since: the hint becomes the score, or goes if the index was
// empty. Otherwise it may only be lowered, to the score.
var tightenScript = goredis.NewScript(`
for i = 1, #ARGV, 3 do
	local b, m = ARGV[i], ARGV[i + 2]
	if (redis.call('HGET', KEYS[2], b) or '0') == ARGV[i + 1] then
		if m == '' then redis.call('ZREM', KEYS[1], b) else redis.call('ZADD', KEYS[1], m, b) end
	elseif m ~= '' then
		redis.call('ZADD', KEYS[1], 'LT', m, b)
	end
end
return 0
`)

// dueState is what Due keeps between calls.
type dueState struct {
	lock  chan struct{} // held during a repair, and to change every
	every time.Duration // dueRepairEvery; shorter in tests
	last  time.Time     // when the last repair began; zero: none yet
	// read, if not nil, is called after Due has read the buckets and
	// before it tightens their hints: tests run a writer there.
	read func()
}

// hintArgs returns the arguments of hintScript for the updates among us
// for which keep is true and that put their id in the due index with a
// score: each bucket once, with the earliest score.
func hintArgs(us []*update, keep func(i int) bool) []any {
	var earliest map[uint32]int64
	for i, u := range us {
		if u.recheck == "" || u.recheck == "-" || !keep(i) {
			continue
		}
		if earliest == nil {
			earliest = make(map[uint32]int64)
		}
		b, w := bucketOf(u.id), u.final.Recheck.UnixMicro()
		if e, ok := earliest[b]; !ok || w < e {
			earliest[b] = w
		}
	}
	args := make([]any, 0, 2*len(earliest))
	for _, b := range slices.Sorted(maps.Keys(earliest)) {
		args = append(args, bucketHex(b), earliest[b])
	}
	return args
}

// Due implements store.Rechecker. It reads the buckets whose hint is at
// or before t (one command; an idle poll ends there), their generations,
// then the due entries and earliest score of each of those buckets in one
// pipeline, keeps the max earliest entries, and tightens the buckets'
// hints to what it read (see tightenScript). At its first call and then
// every dueRepairEvery it first repairs the hints from every bucket
// (repairHints). Times are compared at microsecond precision (the index's
// scores are Unix microseconds), so a profile may be due up to a
// microsecond early, never late, and two due in the same microsecond come
// in order of id.
func (s *Store) Due(ctx context.Context, t time.Time, max int) ([]string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, err
	}
	at := t.Format(time.RFC3339Nano)
	if err := s.repairHints(ctx); err != nil {
		return nil, s.wrap(err, "read profiles due by %s: repair the hints of %s", at, s.hintsKey())
	}
	ts := score(t)
	members, err := s.client.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: s.hintsKey(), Start: "-inf", Stop: ts, ByScore: true}).Result()
	if err != nil {
		return nil, s.wrap(err, "read profiles due by %s: read the hints %s", at, s.hintsKey())
	}
	if len(members) == 0 {
		return []string{}, nil
	}
	bs := make([]uint32, len(members))
	for i, m := range members {
		b, err := strconv.ParseUint(m, 16, 32)
		if err != nil || b >= buckets || bucketHex(uint32(b)) != m {
			return nil, fmt.Errorf("tailor/store/redis: read profiles due by %s: member %q of %s is not a bucket in hex", at, m, s.hintsKey())
		}
		bs[i] = uint32(b)
	}
	gens, err := s.gens(ctx, members)
	if err != nil {
		return nil, s.wrap(err, "read profiles due by %s: read the generations %s", at, s.gensKey())
	}
	// Each bucket's index after reading its generation: the order the
	// tightening relies on.
	pipe := s.client.Pipeline()
	dues := make([]*goredis.ZSliceCmd, len(bs))
	firsts := make([]*goredis.ZSliceCmd, len(bs))
	for i, b := range bs {
		dues[i] = pipe.ZRangeArgsWithScores(ctx, goredis.ZRangeArgs{
			Key: s.dueKey(b), Start: "-inf", Stop: ts, ByScore: true, Count: int64(max),
		})
		firsts[i] = pipe.ZRangeWithScores(ctx, s.dueKey(b), 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap(err, "read profiles due by %s", at)
	}
	if s.due.read != nil {
		s.due.read()
	}
	if err := s.tighten(ctx, members, gens, firsts); err != nil {
		return nil, s.wrap(err, "read profiles due by %s: tighten the hints of %s", at, s.hintsKey())
	}
	var due []goredis.Z
	for _, c := range dues {
		due = append(due, c.Val()...)
	}
	slices.SortFunc(due, func(a, b goredis.Z) int {
		if a.Score != b.Score {
			return cmp.Compare(a.Score, b.Score)
		}
		return strings.Compare(a.Member.(string), b.Member.(string))
	})
	ids := make([]string, 0, min(max, len(due)))
	for _, z := range due[:min(max, len(due))] {
		ids = append(ids, z.Member.(string))
	}
	return ids, nil
}

// gens returns the generations of the buckets members (in hex), "0" for
// those that have none.
func (s *Store) gens(ctx context.Context, members []string) ([]string, error) {
	vals, err := s.client.HMGet(ctx, s.gensKey(), members...).Result()
	if err != nil {
		return nil, err
	}
	gens := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
			gens[i] = "0"
		case string:
			gens[i] = v
		default:
			return nil, fmt.Errorf("field %s holds %T", members[i], v)
		}
	}
	return gens, nil
}

// tighten runs tightenScript for the buckets members, whose generations
// gens were read before firsts, the earliest entries of their indexes.
func (s *Store) tighten(ctx context.Context, members, gens []string, firsts []*goredis.ZSliceCmd) error {
	args := make([]any, 0, 3*len(members))
	for i, m := range members {
		args = append(args, m, gens[i], earliest(firsts[i]))
	}
	return tightenScript.Run(ctx, s.client, s.hintKeys(), args...).Err()
}

// earliest returns the score of the entry that c read ("" if none).
func earliest(c *goredis.ZSliceCmd) string {
	if z := c.Val(); len(z) > 0 {
		return strconv.FormatFloat(z[0].Score, 'f', -1, 64)
	}
	return ""
}

// repairHints sets the hints from the earliest score of every bucket's
// due index, if this Store has not done so for dueRepairEvery: the hints
// and generations in one round trip, the 1024 earliest entries in one
// pipeline, then tightenScript for the buckets whose hint differs from
// what it read. Calls wait for each other's repair.
func (s *Store) repairHints(ctx context.Context) error {
	select {
	case s.due.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.due.lock }()
	began := time.Now()
	if !s.due.last.IsZero() && began.Sub(s.due.last) < s.due.every {
		return nil
	}
	pipe := s.client.Pipeline()
	gensCmd := pipe.HGetAll(ctx, s.gensKey())
	hintsCmd := pipe.ZRangeWithScores(ctx, s.hintsKey(), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	hints := make(map[string]float64, len(hintsCmd.Val()))
	for _, z := range hintsCmd.Val() {
		hints[z.Member.(string)] = z.Score
	}
	gens := gensCmd.Val()
	pipe = s.client.Pipeline()
	firsts := make([]*goredis.ZSliceCmd, buckets)
	for b := range uint32(buckets) {
		firsts[b] = pipe.ZRangeWithScores(ctx, s.dueKey(b), 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	var members, gs []string
	var fs []*goredis.ZSliceCmd
	for b, c := range firsts {
		m := bucketHex(uint32(b))
		h, hinted := hints[m]
		if z := c.Val(); len(z) == 0 && !hinted || len(z) > 0 && hinted && z[0].Score == h {
			continue // the hint is exact
		}
		g, ok := gens[m]
		if !ok {
			g = "0"
		}
		members, gs, fs = append(members, m), append(gs, g), append(fs, c)
	}
	if len(members) > 0 {
		if err := s.tighten(ctx, members, gs, fs); err != nil {
			return err
		}
	}
	s.due.last = began
	return nil
}
