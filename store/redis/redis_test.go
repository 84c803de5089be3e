package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/redis"
	"github.com/tailorhq/tailor/store/storetest"
)

// client returns a client of the test server, closed when t ends.
func client(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testenv.Redis(t)})
	t.Cleanup(func() { c.Close() })
	return c
}

// uniquePrefix returns a fresh key prefix and removes its keys when t ends.
// The cleanup is registered before the store's Close, so it runs after it.
func uniquePrefix(t *testing.T, c goredis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "tailortest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	return prefix
}

func deleteKeys(t *testing.T, c goredis.UniversalClient, prefix string) {
	ctx := context.Background()
	del := func(ctx context.Context, node goredis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			// One key per DEL: keys of different slots cannot share one.
			if err := node.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error { return del(ctx, node) })
	} else {
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("delete test keys %s*: %v", prefix, err)
	}
}

func newStore(t *testing.T, c goredis.UniversalClient, opts redis.Options) *redis.Store {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix(t, c)
	}
	s, err := redis.New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	c := client(t)
	storetest.RunWith(t, func(t *testing.T, o storetest.Options) store.Store {
		return newStore(t, c, redis.Options{TombstoneTTL: o.TombstoneTTL})
	})
}

func TestConformanceSmallLimits(t *testing.T) {
	t.Parallel()
	c := client(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, c, redis.Options{Limits: store.Limits{Recent: 7, Pages: 5, TraitsBytes: 64}})
	})
}

// TestClusterConformance runs the suite on a three-node Redis Cluster that
// it starts on loopback ports, so that every key the store uses is checked
// against slot rules (a script touching keys of two slots fails).
func TestClusterConformance(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	storetest.RunWith(t, func(t *testing.T, o storetest.Options) store.Store {
		return newStore(t, c, redis.Options{TombstoneTTL: o.TombstoneTTL})
	})
	t.Run("PrefixWithBraces", func(t *testing.T) {
		s := newStore(t, c, redis.Options{Prefix: uniquePrefix(t, c) + "{x:"})
		defer s.Close()
		if _, err := s.Apply(t.Context(), "a}b{c", []store.Event{storetest.Page("p", 1, "/"), recheckEvent("a}b{c", nil, hour(1))}); err != nil {
			t.Fatal(err)
		}
		if due, err := s.Due(t.Context(), hour(1), 10); err != nil || len(due) != 1 {
			t.Fatalf("Due = %q, %v; want a}b{c", due, err)
		}
		if _, err := s.Expire(t.Context(), time.Now()); err != nil {
			t.Fatal(err)
		}
	})
}

func startCluster(t *testing.T) *goredis.ClusterClient {
	t.Helper()
	testenv.Redis(t) // skip without a Redis installation, like the other tests
	server := testenv.Command(t, "redis-server", "apt-get install -y redis-server")
	cli := testenv.Command(t, "redis-cli", "apt-get install -y redis-tools")
	dir := t.TempDir()
	var addrs []string
	for range 3 {
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"),
			"--dir", dir, "--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, strconv.Itoa(port)+".log"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addrs = append(addrs, addr)
	}
	for _, a := range addrs {
		waitDial(t, a)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		n := goredis.NewClient(&goredis.Options{Addr: a})
		for {
			info, err := n.ClusterInfo(t.Context()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster at %s not ready: %v %s", a, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		n.Close()
	}
	if err := c.ReloadState; err != nil {
		c.ReloadState(t.Context())
	}
	return c
}

// freePort returns a port that is free, and whose cluster bus port (port +
// 10000) is free too.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		if b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			b.Close()
			return port
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

func waitDial(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s did not start: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	if _, err := redis.New(nil, redis.Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // New does no I/O
	defer c.Close()
	s, err := redis.New(c, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Prefix() != "tailor:" || s.Channel() != "tailor:invalidate" || s.Limits() != store.DefaultLimits {
		t.Fatalf("defaults: prefix %q channel %q limits %+v", s.Prefix(), s.Channel(), s.Limits())
	}
	if _, err := redis.New(c, redis.Options{TombstoneTTL: -time.Second}); err == nil || !strings.Contains(err.Error(), "TombstoneTTL") {
		t.Fatalf("New with a negative TombstoneTTL: %v, want an error naming it", err)
	}
}

// TestLayout checks the documented keys: the profile's encoding and its
// version under keys tagged with its bucket, the bucket's index, the
// profile's counted set and the bucket's counts; no staging key is left
// behind.
func TestLayout(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	p, err := s.Apply(ctx, "visitor-1", []store.Event{storetest.Page("l", 1, "/")})
	if err != nil {
		t.Fatal(err)
	}
	tag := s.Prefix() + "{" + strconv.FormatUint(uint64(redis.BucketOf("visitor-1")), 16) + "}:"
	data, err := c.Get(ctx, tag+"p:visitor-1").Bytes()
	if err != nil {
		t.Fatalf("GET p: %v", err)
	}
	stored, err := store.Unmarshal(data)
	if err != nil || stored.Version != p.Version || stored.Counts["page"] != 1 {
		t.Fatalf("stored profile %+v, %v", stored, err)
	}
	if v, err := c.Get(ctx, tag+"v:visitor-1").Result(); err != nil || v != "1" {
		t.Fatalf("GET v = %q, %v", v, err)
	}
	if ttl := c.TTL(ctx, tag+"p:visitor-1").Val(); ttl != -1 {
		t.Fatalf("profile key has TTL %v, want none", ttl)
	}
	if keys := scanKeys(t, c, s.Prefix()+"*"); len(keys) != 5 {
		t.Fatalf("keys %v, want the profile's, its version's, its counted set, the index and the counts", keys)
	}
	sc, err := c.ZScore(ctx, tag+"seen", "visitor-1").Result()
	if err != nil || int64(sc) != p.LastSeen.UnixMicro() {
		t.Fatalf("index score %v, %v; want %d", sc, err, p.LastSeen.UnixMicro())
	}
	if k, err := c.SMembers(ctx, tag+"k:visitor-1").Result(); err != nil || !slices.Equal(k, []string{store.CountProfiles}) {
		t.Fatalf("counted set %q, %v; want [%s]", k, err, store.CountProfiles)
	}
	if n, err := c.HGetAll(ctx, tag+"counts").Result(); err != nil || len(n) != 1 || n[store.CountProfiles] != "1" {
		t.Fatalf("bucket counts %v, %v; want 1 profile", n, err)
	}
	// A recheck time puts the id in the bucket's due index.
	until := time.Date(2027, 1, 2, 3, 4, 5, 6000, time.UTC)
	if _, err := s.Apply(ctx, "visitor-1", []store.Event{{ID: store.EventID("l", 2), Type: store.TypeSegments, Time: until,
		Classified: &store.Classification{Visitor: "visitor-1", Segments: []string{"fans"}, Until: until}}}); err != nil {
		t.Fatal(err)
	}
	if sc, err := c.ZScore(ctx, tag+"due", "visitor-1").Result(); err != nil || int64(sc) != until.UnixMicro() {
		t.Fatalf("due score %v, %v; want %d", sc, err, until.UnixMicro())
	}
	// and the bucket in the due hints, with the write counted in its
	// generation.
	bucket := strconv.FormatUint(uint64(redis.BucketOf("visitor-1")), 16)
	if sc, err := c.ZScore(ctx, s.Prefix()+"{due}:hints", bucket).Result(); err != nil || int64(sc) != until.UnixMicro() {
		t.Fatalf("hint of bucket %s: %v, %v; want %d", bucket, sc, err, until.UnixMicro())
	}
	if g, err := c.HGet(ctx, s.Prefix()+"{due}:gens", bucket).Result(); err != nil || g != "1" {
		t.Fatalf("generation of bucket %s: %q, %v; want 1", bucket, g, err)
	}
	if n := c.HGetAll(ctx, tag+"counts").Val(); len(n) != 2 || n[store.SegmentKey("fans")] != "1" {
		t.Fatalf("bucket counts %v; want 1 profile and 1 fan", n)
	}
	// Delete leaves of the bucket's keys the tombstone, which expires by
	// itself; the counts of the bucket fall to zero, and go. The due hint
	// stays (a lower bound still) until a Due reads the bucket empty.
	if err := s.Delete(ctx, "visitor-1"); err != nil {
		t.Fatal(err)
	}
	sorted := func(keys []string) []string { slices.Sort(keys); return keys }
	want := sorted([]string{s.Prefix() + "{due}:gens", s.Prefix() + "{due}:hints", tag + "t:visitor-1"})
	if keys := sorted(scanKeys(t, c, s.Prefix()+"*")); !slices.Equal(keys, want) {
		t.Fatalf("keys after Delete %v, want %v", keys, want)
	}
	if due, err := s.Due(ctx, until, 10); err != nil || len(due) != 0 {
		t.Fatalf("Due after Delete = %q, %v; want none", due, err)
	}
	want = slices.DeleteFunc(want, func(k string) bool { return k == s.Prefix()+"{due}:hints" })
	if keys := sorted(scanKeys(t, c, s.Prefix()+"*")); !slices.Equal(keys, want) {
		t.Fatalf("keys after Due %v, want %v", keys, want)
	}
	if ttl := c.PTTL(ctx, tag+"t:visitor-1").Val(); ttl <= 0 || ttl > store.DefaultTombstoneTTL {
		t.Fatalf("tombstone has TTL %v, want at most %v", ttl, store.DefaultTombstoneTTL)
	}
}

// TestTwoStores has two stores on one prefix, as two app instances would:
// writes are never lost between them and each sees the other's
// invalidations.
func TestTwoStores(t *testing.T) {
	t.Parallel()
	c1, c2 := client(t), client(t)
	prefix := uniquePrefix(t, c1)
	s1 := newStore(t, c1, redis.Options{Prefix: prefix})
	s2 := newStore(t, c2, redis.Options{Prefix: prefix})
	defer s1.Close()
	defer s2.Close()
	ctx := t.Context()

	got := make(chan string, 100)
	if err := s2.Subscribe(ctx, func(c store.Change) { got <- c.ID }); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Apply(ctx, "shared", []store.Event{storetest.Page("one", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Delete(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	if err := s1.Delete(ctx, "never-there"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"shared", "shared"} {
		select {
		case id := <-got:
			if id != want {
				t.Fatalf("invalidation %q, want %q", id, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no invalidation for %q", want)
		}
	}

	const per = 60
	var wg sync.WaitGroup
	for w, s := range []*redis.Store{s1, s2, s1, s2} {
		wg.Go(func() {
			for i := 1; i <= per; i += 3 {
				batch := []store.Batch{
					{ID: "x", Events: []store.Event{storetest.Page(fmt.Sprint("w", w), i, "/")}},
					{ID: "y", Events: []store.Event{storetest.Page(fmt.Sprint("w", w), i, "/")}},
					{ID: "x", Events: []store.Event{storetest.Page(fmt.Sprint("w", w), i+1, "/"), storetest.Page(fmt.Sprint("w", w), i+2, "/")}},
				}
				if _, err := s.ApplyBatch(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	x, err := s2.Load(ctx, "x")
	if err != nil || x.Counts["page"] != 4*per {
		t.Fatalf("x: %v, %v; want %d page views", x.Counts, err, 4*per)
	}
	y, err := s1.Load(ctx, "y")
	if err != nil || y.Counts["page"] != 4*per/3 {
		t.Fatalf("y: %v, %v; want %d page views", y.Counts, err, 4*per/3)
	}
}

func scanKeys(t *testing.T, c *goredis.Client, pattern string) []string {
	t.Helper()
	keys, err := c.Keys(t.Context(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// conflictHook makes every compare-and-swap lose: before a pipeline that
// runs scripts, it bumps the version of the profile the test names.
type conflictHook struct {
	other *goredis.Client
	key   string
	on    atomic.Bool
	casN  atomic.Int32
}

func (h *conflictHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *conflictHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return next
}
func (h *conflictHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, c := range cmds {
			if name := c.Name(); h.on.Load() && (name == "evalsha" || name == "eval") {
				if err := h.other.Incr(ctx, h.key).Err(); err != nil {
					return err
				}
				err := next(ctx, cmds)
				if !goredis.HasErrorPrefix(c.Err(), "NOSCRIPT") { // not a retry with EVAL
					h.casN.Add(1)
				}
				return err
			}
		}
		return next(ctx, cmds)
	}
}

func TestConflict(t *testing.T) {
	t.Parallel()
	other := client(t)
	c := client(t)
	prefix := uniquePrefix(t, other)
	tag := prefix + "{" + strconv.FormatUint(uint64(redis.BucketOf("hot")), 16) + "}:"
	h := &conflictHook{other: other, key: tag + "v:hot"}
	c.AddHook(h)
	s := newStore(t, c, redis.Options{Prefix: prefix})
	defer s.Close()
	if _, err := s.Apply(t.Context(), "hot", []store.Event{storetest.Page("c", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	h.on.Store(true)
	for _, tc := range []struct{ retries, attempts int }{{-1, 1}, {3, 4}} {
		h.casN.Store(0)
		s := newStore(t, c, redis.Options{Prefix: prefix, MaxRetries: tc.retries})
		_, err := s.Apply(t.Context(), "hot", []store.Event{storetest.Page("c", 2, "/")})
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), `"hot"`) {
			t.Errorf("MaxRetries %d: Apply error = %v, want ErrConflict naming the id", tc.retries, err)
		}
		if n := int(h.casN.Load()); n != tc.attempts {
			t.Errorf("MaxRetries %d: %d compare-and-swaps, want %d", tc.retries, n, tc.attempts)
		}
		_, err = s.ApplyBatch(t.Context(), []store.Batch{{ID: "cold", Events: []store.Event{storetest.Page("c", 1, "/")}}, {ID: "hot"}})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("MaxRetries %d: ApplyBatch error = %v, want ErrConflict", tc.retries, err)
		}
		s.Close()
	}
	if keys := scanKeys(t, other, prefix+"*:w:*"); len(keys) != 0 {
		t.Fatalf("staging keys left after conflicts: %v", keys)
	}
}

// TestNoScript checks that the store recovers from a server that lost its
// script cache (restart, SCRIPT FLUSH).
func TestNoScript(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	for i := 1; i <= 3; i++ {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyBatch(ctx, []store.Batch{{ID: "a", Events: []store.Event{storetest.Page("n", i, "/")}}}); err != nil {
			t.Fatalf("ApplyBatch after SCRIPT FLUSH: %v", err)
		}
	}
	c.ScriptFlush(ctx)
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete after SCRIPT FLUSH: %v", err)
	}
}

func TestApplyBatchSameID(t *testing.T) {
	t.Parallel()
	s := newStore(t, client(t), redis.Options{})
	defer s.Close()
	ctx := t.Context()
	ps, err := s.ApplyBatch(ctx, []store.Batch{
		{ID: "a", Events: []store.Event{storetest.Page("x", 1, "/")}},
		{ID: "b", Events: []store.Event{storetest.Page("x", 1, "/")}},
		{ID: "a", Events: []store.Event{storetest.Page("x", 2, "/"), storetest.Page("x", 1, "/")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].Counts["page"] != 1 || ps[0].Version != 1 || ps[2].Counts["page"] != 2 || ps[2].Version != 2 || ps[0] == ps[2] {
		t.Fatalf("snapshots: %v v%d, %v v%d", ps[0].Counts, ps[0].Version, ps[2].Counts, ps[2].Version)
	}
	p, err := s.Load(ctx, "a")
	if err != nil || p.Counts["page"] != 2 || p.Version != 2 {
		t.Fatalf("Load(a) = %v, %v", p, err)
	}
	if _, err := s.ApplyBatch(ctx, []store.Batch{{ID: "ok"}, {ID: "bad\n"}}); !errors.Is(err, store.ErrInvalidID) {
		t.Fatalf("ApplyBatch with a bad id: %v", err)
	}
	if _, err := s.Load(ctx, "ok"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ApplyBatch with a bad id stored a profile: %v", err)
	}
}

// TestRangeAndExpireChunks crosses Range's and Expire's per-bucket chunks.
func TestRangeAndExpireChunks(t *testing.T) {
	t.Parallel()
	s := newStore(t, client(t), redis.Options{})
	defer s.Close()
	s.SetChunk(2)
	ctx := t.Context()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var batches []store.Batch
	const n = 3000 // about 3 per bucket
	for i := range n {
		ts := old
		if i%3 == 0 {
			ts = old.AddDate(5, 0, 0)
		}
		batches = append(batches, store.Batch{ID: fmt.Sprint("v", i), Events: []store.Event{{ID: "e", Type: store.TypePage, Time: ts}}})
	}
	if _, err := s.ApplyBatch(ctx, batches); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	if err := s.Range(ctx, func(p *store.Profile) bool {
		seen[p.ID]++
		if p.ID == "v7" { // the store may be used from fn
			if _, err := s.Apply(ctx, p.ID, []store.Event{storetest.Page("r", 1, "/")}); err != nil {
				t.Error(err)
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("Range saw %d profiles, want %d", len(seen), n)
	}
	got, err := s.Expire(ctx, old.AddDate(1, 0, 0))
	if want := n - (n+2)/3 - 1; err != nil || got != want { // v7 was seen again
		t.Fatalf("Expire = %d, %v; want %d", got, err, want)
	}
	// v7 was seen again in Range (its page view has a 2026 time): it stays.
	for id, want := range map[string]bool{"v0": true, "v1": false, "v3": true, "v7": true} {
		_, err := s.Load(ctx, id)
		if (err == nil) != want {
			t.Errorf("after Expire, Load(%s) = %v, want present %v", id, err, want)
		}
	}
}

func TestExpirePrecision(t *testing.T) {
	t.Parallel()
	s := newStore(t, client(t), redis.Options{})
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	if _, err := s.Apply(ctx, "v", []store.Event{{ID: "e", Type: store.TypePage, Time: at}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Expire(ctx, at); err != nil || n != 0 {
		t.Fatalf("Expire(LastSeen) = %d, %v; want 0: not before", n, err)
	}
	if n, err := s.Expire(ctx, at.Add(time.Microsecond)); err != nil || n != 1 {
		t.Fatalf("Expire(LastSeen+1µs) = %d, %v; want 1", n, err)
	}
}

func TestSubscribeEnds(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	ctx := t.Context()
	numsub := func() int64 {
		return c.PubSubNumSub(ctx, s.Channel()).Val()[s.Channel()]
	}
	waitFor := func(what string, want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for numsub() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d subscribers, want %d", what, numsub(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	if err := s.Subscribe(sctx, func(store.Change) {}); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, func(store.Change) {}); err != nil {
		t.Fatal(err)
	}
	waitFor("after Subscribe", 2)
	cancel()
	waitFor("after cancel", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor("after Close", 0)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Close closed the caller's client: %v", err)
	}
	if err := s.Subscribe(ctx, func(store.Change) {}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if _, err := s.ApplyBatch(ctx, []store.Batch{{ID: "v"}}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("ApplyBatch after Close: %v", err)
	}
	if err := s.Range(ctx, func(*store.Profile) bool { return true }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Range after Close: %v", err)
	}
	if _, err := s.Expire(ctx, time.Now()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Expire after Close: %v", err)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	s, _ := redis.New(c, redis.Options{})
	_, err := s.Apply(t.Context(), "visitor-9", []store.Event{storetest.Page("d", 1, "/")})
	if err == nil || !strings.Contains(err.Error(), `"visitor-9"`) {
		t.Fatalf("Apply with the server down: %v, want an error naming the profile", err)
	}
}

// dropStagingHook drops the staging SETs from the first n pipelines that
// run scripts, as if the staged values had expired.
type dropStagingHook struct {
	left atomic.Int32
}

func (h *dropStagingHook) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *dropStagingHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h *dropStagingHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		hasSet := slices.ContainsFunc(cmds, func(c goredis.Cmder) bool { return c.Name() == "set" })
		if !hasSet || h.left.Add(-1) < 0 {
			return next(ctx, cmds)
		}
		kept := slices.DeleteFunc(slices.Clone(cmds), func(c goredis.Cmder) bool { return c.Name() == "set" })
		return next(ctx, kept)
	}
}

// TestStagingLost checks that a compare-and-swap whose staged value is gone
// writes nothing and is retried.
func TestStagingLost(t *testing.T) {
	t.Parallel()
	c := client(t)
	h := &dropStagingHook{}
	h.left.Store(2)
	c.AddHook(h)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	ps, err := s.ApplyBatch(ctx, []store.Batch{
		{ID: "a", Events: []store.Event{storetest.Page("s", 1, "/")}},
		{ID: "b", Events: []store.Event{storetest.Page("s", 1, "/")}},
	})
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	if h.left.Load() >= 0 {
		t.Fatal("the hook did not drop the staging writes")
	}
	for i, id := range []string{"a", "b"} {
		p, err := s.Load(ctx, id)
		if err != nil || p.Version != 1 || p.Counts["page"] != 1 || ps[i].Version != 1 {
			t.Fatalf("Load(%s) = %+v, %v", id, p, err)
		}
	}
	h.left.Store(100)
	s2 := newStore(t, c, redis.Options{MaxRetries: 2})
	defer s2.Close()
	if _, err := s2.Apply(ctx, "c", nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Apply with every staged value lost: %v, want ErrConflict", err)
	}
	if _, err := s2.Load(ctx, "c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a write without its staged value stored something: %v", err)
	}
}

// TestDataDeletedByHand checks that a profile whose data key was deleted
// outside the store (an operator erasing it) starts afresh.
func TestDataDeletedByHand(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{MaxRetries: -1})
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Apply(ctx, "v", []store.Event{storetest.Page("h", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	tag := s.Prefix() + "{" + strconv.FormatUint(uint64(redis.BucketOf("v")), 16) + "}:"
	if err := c.Del(ctx, tag+"p:v").Err(); err != nil {
		t.Fatal(err)
	}
	p, err := s.Apply(ctx, "v", []store.Event{storetest.Page("h", 1, "/")})
	if err != nil || p.Counts["page"] != 1 || p.Version != 1 {
		t.Fatalf("Apply after the data was deleted by hand = %+v, %v", p, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for loggers that
// outlive a test (go-redis's logger is the process's).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClientLogsToSlog: with the server down, what go-redis logs of its
// own (the failed dials) reaches Options.Logger as structured records,
// not standard error.
func TestClientLogsToSlog(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	s, err := redis.New(c, redis.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Load(t.Context(), "visitor-1"); err == nil {
		t.Fatal("Load with the server down succeeded")
	}
	found := false
	for line := range strings.Lines(buf.String()) {
		var rec struct {
			Level, Msg, Logger string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Logger == "go-redis" && rec.Level == "WARN" && strings.Contains(rec.Msg, addr) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no go-redis record about %s in the logger's output:\n%s", addr, buf.String())
	}
}

// TestDocumentAnnouncedToOtherStore: a document put through one store is
// announced to the subscribers of another on the same prefix, as to
// another app instance, and reads as put when it is heard.
func TestDocumentAnnouncedToOtherStore(t *testing.T) {
	t.Parallel()
	c1, c2 := client(t), client(t)
	prefix := uniquePrefix(t, c1)
	s1 := newStore(t, c1, redis.Options{Prefix: prefix})
	s2 := newStore(t, c2, redis.Options{Prefix: prefix})
	defer s1.Close()
	defer s2.Close()
	ctx := t.Context()
	got := make(chan heardDoc, 10)
	if err := s2.Subscribe(ctx, func(c store.Change) {
		data, err := s2.Document(ctx, c.Document)
		got <- heardDoc{c, string(data), err}
	}); err != nil {
		t.Fatal(err)
	}
	if err := s1.PutDocument(ctx, "segments/live", []byte("v7")); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-got:
		if want := (heardDoc{c: store.Change{Document: "segments/live"}, data: "v7"}); h != want {
			t.Fatalf("heard %+v, want %+v", h, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the document was not announced to the other store within 5s")
	}
}

// heardDoc is a change heard, with the document it names read then.
type heardDoc struct {
	c    store.Change
	data string
	err  error
}
