package assoc

import "testing"

func TestModelEvictDropsNew(t *testing.T) {
	m := New(Config{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxCache: 6})
	m.Learn(Basket{}, Basket{Bought: []string{"a", "b", "c", "d", "e"}})
	m.Rules("a", "b") // 3 consequents + 1 = 4
	m.Rules("c", "d") // 4 more: 8 > 6
	st := m.Stats()
	t.Logf("cached %d pairs, computed %d", st.CachedPairs, st.PairsComputed)
	if st.CachedPairs == 0 {
		t.Error("eviction dropped the pair just computed too")
	}
}
