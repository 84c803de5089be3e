package store_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// TestCodecDifferential applies random operations (events of every kind
// with odd IDs and times, merges, clones, direct pushes, lowered and
// raised limits) to a profile in memory and to one that goes through
// AppendBinary and Unmarshal or UnmarshalString at random steps, as in a
// store, and checks that both stay equal.
func TestCodecDifferential(t *testing.T) {
	t.Parallel()
	seeds := 64
	if testing.Short() {
		seeds = 8
	}
	for it := range seeds {
		g := &gen{r: rand.New(rand.NewPCG(1, uint64(it))), seqs: map[string]uint64{}}
		ref, p, log := build(t, g, 150, 0)
		if a, b := jsonOrError(p), jsonOrError(ref); a != b {
			t.Fatalf("seed %d end:\n got %s\nwant %s\nlog %v", it, a, b, log)
		}
	}
}

type gen struct {
	r    *rand.Rand
	seqs map[string]uint64
	n    int
}

func (g *gen) str(pool ...string) string { return pool[g.r.IntN(len(pool))] }

func (g *gen) time() time.Time {
	switch g.r.IntN(10) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(-g.r.Int64N(1e10), int64(g.r.IntN(1e9))).UTC()
	case 2:
		return time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	case 3:
		return time.Date(1, 1, 1, 0, 0, 1, 5, time.UTC)
	case 4:
		return time.Unix(0, 0).UTC()
	default:
		t := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.IntN(1e6)) * time.Second)
		if g.r.IntN(2) == 0 {
			t = t.Add(time.Duration(g.r.IntN(1e9)))
		}
		return t
	}
}

func (g *gen) id() string {
	g.n++
	switch g.r.IntN(14) {
	case 0:
		return ""
	case 1:
		return "p:0"
	case 2:
		return ":5"
	case 3:
		return "x:007"
	case 4:
		return fmt.Sprintf("#m-%d", g.r.IntN(20))
	case 5:
		return fmt.Sprintf("opaque-%d", g.r.IntN(30))
	case 6:
		return "a:b:" + fmt.Sprint(g.r.IntN(50)+1)
	case 7:
		return "p:+3"
	case 8:
		return fmt.Sprintf("p:%d", g.r.IntN(100)+1) // possibly old: skipped
	case 9:
		return "q:18446744073709551615"
	default:
		prod := g.str("p", "q", "r", "a:b", "lo\x00ng-producer-ü")
		g.seqs[prod] += uint64(g.r.IntN(3) + 1)
		return fmt.Sprintf("%s:%d", prod, g.seqs[prod])
	}
}

func (g *gen) event(depth int) store.Event {
	e := store.Event{ID: g.id(), Time: g.time()}
	e.Type = g.str(store.TypePage, store.TypePage, store.TypeTrack, store.TypeIdentify, "", "weird")
	if depth < 2 && g.r.IntN(25) == 0 {
		e.Type = store.TypeMerge
		e.Merge = nil // filled by caller
	}
	if g.r.IntN(60) == 0 {
		e.Type, e.UserID = store.TypeAlias, g.str("", "u1", "u2")
	}
	strs := []string{"", "", "/", "/a", "/b", "books", "x", fmt.Sprintf("s%d", g.r.IntN(40)), "ü€"}
	e.Path, e.Category, e.Item = g.str(strs...), g.str(strs...), g.str(strs...)
	if g.r.IntN(3) == 0 {
		e.Referrer, e.Source, e.Medium, e.Campaign, e.Device = g.str(strs...), g.str(strs...), g.str(strs...), g.str(strs...), g.str(strs...)
	}
	if e.Type == store.TypeTrack {
		e.Name = g.str("purchase", "add", "")
	} else if g.r.IntN(5) == 0 {
		e.Name = g.str(strs...)
	}
	if g.r.IntN(4) == 0 {
		for range g.r.IntN(3) + 1 {
			e.Items = append(e.Items, store.Item{ID: g.str(strs...), Category: g.str(strs...), Price: float64(g.r.IntN(100)) / 4, Quantity: g.r.IntN(4) - 1})
		}
	}
	if g.r.IntN(5) == 0 {
		e.Revenue = float64(g.r.IntN(1000)) / 8
	}
	if g.r.IntN(5) == 0 {
		e.Props = json.RawMessage(fmt.Sprintf(`{"k":%d}`, g.r.IntN(9)))
	}
	if g.r.IntN(6) == 0 {
		e.Traits = json.RawMessage(fmt.Sprintf(`{"t%d":%d}`, g.r.IntN(4), g.r.IntN(9)))
	}
	if g.r.IntN(6) == 0 {
		e.UserID = g.str(strs...)
	}
	e.NewVisit = g.r.IntN(4) == 0
	return e
}

// roundTrip mimics a store: encode into a reused buffer, decode by copy or
// as a string, then scribble over the buffer.
func roundTrip(t *testing.T, g *gen, p *store.Profile, buf *[]byte) *store.Profile {
	var err error
	*buf, err = p.AppendBinary((*buf)[:0])
	if err != nil {
		t.Fatal(err)
	}
	var q *store.Profile
	if g.r.IntN(2) == 0 {
		q, err = store.Unmarshal(*buf)
	} else {
		q, err = store.UnmarshalString(string(*buf))
	}
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	for i := range *buf {
		(*buf)[i] = 0xAA
	}
	return q
}

// build makes two profiles through the same random operations, the
// reference in memory only, the other with store-style round trips in
// between, and checks that they stay equal.
func build(t *testing.T, g *gen, steps int, depth int) (ref, p *store.Profile, log []string) {
	ref, p = store.New("v"), store.New("v")
	var buf []byte
	lim := store.Limits{Recent: 3 + g.r.IntN(8), Producers: 3, RememberedIDs: 5, Pages: 6, Items: 6, Categories: 6, EventNames: 6}
	for s := range steps {
		switch g.r.IntN(12) {
		case 0:
			lim.Recent = 3 + g.r.IntN(8)
			log = append(log, fmt.Sprintf("limit %d", lim.Recent))
		case 1, 2, 3:
			p = roundTrip(t, g, p, &buf)
			log = append(log, "rt")
		case 4:
			p = p.Clone()
			log = append(log, "clone")
		case 5:
			c := p.Clone()
			c.Apply(lim, g.event(9)) // must not affect p
			_ = jsonOrError(c)
			log = append(log, "clone-mutate")
		case 6:
			if n := p.Recent.Len(); n > 0 {
				i := g.r.IntN(n)
				if a, b := jsonOrError(p.Recent.At(i)), jsonOrError(ref.Recent.At(i)); a != b {
					t.Fatalf("step %d At(%d):\n%s\n%s\nlog %v", s, i, a, b, log)
				}
			}
			log = append(log, "at")
		case 7:
			// Push directly
			e := g.event(9)
			e.Merge = nil
			if e.Type == store.TypeMerge {
				e.Type = "page"
			}
			l := 3 + g.r.IntN(8)
			p.Recent.Push(e, l)
			ref.Recent.Push(e, l)
			log = append(log, fmt.Sprintf("push %d", l))
		case 8:
			o1, o2, _ := build(t, g, g.r.IntN(15), depth+1)
			if depth > 0 {
				break
			}
			ref.Merge(lim, o1)
			p.Merge(lim, o2)
			log = append(log, "merge")
		default:
			var evs, revs []store.Event
			for range g.r.IntN(4) + 1 {
				e := g.event(depth)
				re := e
				if e.Type == store.TypeMerge {
					if depth > 0 {
						e.Type, re.Type = "page", "page"
					} else {
						o1, o2, _ := build(t, g, g.r.IntN(15), depth+1)
						re.Merge, e.Merge = o1, o2
					}
				}
				evs, revs = append(evs, e), append(revs, re)
			}
			a, b := p.Apply(lim, evs...), ref.Apply(lim, revs...)
			if a != b {
				t.Fatalf("applied %d vs %d", a, b)
			}
			log = append(log, fmt.Sprintf("apply %d", len(evs)))
		}
		if p.Recent.Len() != ref.Recent.Len() {
			t.Fatalf("step %d: Len %d vs %d; log %v", s, p.Recent.Len(), ref.Recent.Len(), log)
		}
		if g.r.IntN(3) == 0 {
			if a, b := jsonOrError(p), jsonOrError(ref); a != b {
				t.Fatalf("step %d:\n got %s\nwant %s\nlog %v", s, a, b, log)
			}
		}
	}
	return ref, p, log
}
