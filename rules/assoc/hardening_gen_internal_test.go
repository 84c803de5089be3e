package assoc

import (
	"math"
	"testing"
)

// The generation counters of the marks wrap after 2^32 learning steps.
func TestModelGenWrap(t *testing.T) {
	m := New(Config{MinSupport: -1, MinConfidence: -1, MinLift: -1})
	m.Learn(Basket{}, Basket{Bought: []string{"a", "b", "c"}})
	m.Learn(Basket{}, Basket{Bought: []string{"a", "b"}})
	m.Learn(Basket{}, Basket{Bought: []string{"x"}})
	m.Rules("a", "b") // cache the pair {a, b}
	m.Rules("a", "c")
	m.st.pairs.gen = math.MaxUint32 - 1 // as after 2^32 steps
	m.Learn(Basket{Bought: []string{"x"}}, Basket{Bought: []string{"a"}})
	if err := CheckInvariants(m); err != nil {
		t.Error(err)
	}
}
