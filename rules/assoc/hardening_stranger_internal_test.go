package assoc

import (
	"bytes"
	"fmt"
	"testing"
)

// Past the bounds, a prior never taught whose hash is above the threshold
// is taken for a taught one: its items are counted, the visitor is not.
func TestModelStrangerSampled(t *testing.T) {
	m := New(Config{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxSample: 8})
	for i := range 6 {
		m.Learn(Basket{}, Basket{Bought: []string{"z", fmt.Sprint("a", i)}})
	}
	st := m.Stats()
	t.Logf("before: %+v", st)
	strangers := 0
	for i := 0; strangers < 10; i++ {
		p := []string{fmt.Sprint("q", i)}
		if hashIDs(p) > m.st.thr {
			m.Learn(Basket{Bought: p}, Basket{Bought: []string{"z"}})
			strangers++
		}
	}
	st = m.Stats()
	t.Logf("after: %+v count[z]=%d sTotal=%d", st, m.st.count[m.st.index["z"]], m.st.sTotal)
	if err := CheckInvariants(m); err != nil {
		t.Error(err)
	}
	var b bytes.Buffer
	m.WriteTo(&b)
	if _, err := New(Config{MaxSample: 8}).ReadFrom(&b); err != nil {
		t.Errorf("the model's own snapshot is refused: %v", err)
	}
}
