package quality_test

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tailorhq/tailor/internal/quality"
)

// TestBruteForce checks the counts on baskets counted by hand.
func TestBruteForce(t *testing.T) {
	bf := quality.NewBruteForce([][]string{
		{"a", "b", "c"},
		{"a", "b"},
		{"a", "c"},
		{"b"},
		{},
		{"a", "b", "c", "d"},
		{"c", "c", "e"}, // a repetition counts once
	})
	if bf.Baskets() != 6 {
		t.Errorf("%d baskets, want 6 (the empty one is not one)", bf.Baskets())
	}
	for _, c := range []struct {
		items []string
		want  int
	}{
		{nil, 6},
		{[]string{"a"}, 4},
		{[]string{"c"}, 4},
		{[]string{"a", "b"}, 3},
		{[]string{"b", "a"}, 3},
		{[]string{"a", "a"}, 4},
		{[]string{"a", "c"}, 3},
		{[]string{"a", "b", "c"}, 2},
		{[]string{"a", "b", "c", "d"}, 1},
		{[]string{"d", "e"}, 0},
		{[]string{"x"}, 0},
		{[]string{"a", "x"}, 0},
	} {
		if got := bf.Count(c.items...); got != c.want {
			t.Errorf("Count(%q) = %d, want %d", c.items, got, c.want)
		}
	}
	if got, want := bf.Items(), []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Errorf("Items() = %q, want %q (ties by id)", got, want)
	}
	for _, c := range []struct {
		ante []string
		want map[string]int
	}{
		{[]string{"a"}, map[string]int{"b": 3, "c": 3, "d": 1}},
		{[]string{"a", "b"}, map[string]int{"c": 2, "d": 1}},
		{[]string{"c"}, map[string]int{"a": 3, "b": 2, "d": 1, "e": 1}},
		{[]string{"e"}, map[string]int{"c": 1}},
		{[]string{"x"}, map[string]int{}},
		{nil, map[string]int{"a": 4, "b": 4, "c": 4, "d": 1, "e": 1}},
	} {
		if got := bf.Consequents(c.ante...); !maps.Equal(got, c.want) {
			t.Errorf("Consequents(%q) = %v, want %v", c.ante, got, c.want)
		}
	}
}

// TestBruteForceRandom compares the counts with a plain scan of random
// baskets, for sets of one to three items.
func TestBruteForceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var baskets [][]string
	for range 500 {
		var b []string
		for _, id := range ids {
			if r.IntN(3) == 0 {
				b = append(b, id)
			}
		}
		baskets = append(baskets, b)
	}
	bf := quality.NewBruteForce(baskets)
	scan := func(items ...string) int {
		n := 0
		for _, b := range baskets {
			all := len(b) > 0
			for _, it := range items {
				all = all && slices.Contains(b, it)
			}
			if all {
				n++
			}
		}
		return n
	}
	for _, x := range ids {
		if got, want := bf.Count(x), scan(x); got != want {
			t.Errorf("Count(%s) = %d, want %d", x, got, want)
		}
		for _, y := range ids {
			for _, z := range ids {
				if got, want := bf.Count(x, y, z), scan(x, y, z); got != want {
					t.Errorf("Count(%s, %s, %s) = %d, want %d", x, y, z, got, want)
				}
			}
			if x < y {
				for z, n := range bf.Consequents(x, y) {
					if want := scan(x, y, z); n != want {
						t.Errorf("Consequents(%s, %s)[%s] = %d, want %d", x, y, z, n, want)
					}
				}
			}
		}
	}
}
