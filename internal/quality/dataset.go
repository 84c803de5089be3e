package quality

import (
	"math/rand/v2"
	"slices"
)

// A Dataset is a named list of baskets. A basket is the set of items one
// visitor bought: item ids, sorted, each once.
type Dataset struct {
	Name    string
	Baskets [][]string
}

// Stats describe the shape of a data set.
type Stats struct {
	// Baskets is the number of baskets, Items the number of distinct items
	// that occur in them.
	Baskets, Items int
	// Mean and Max are the mean and largest number of items per basket.
	Mean float64
	Max  int
}

// Stats returns the shape of d.
func (d Dataset) Stats() Stats {
	st := Stats{Baskets: len(d.Baskets)}
	seen := make(map[string]struct{})
	total := 0
	for _, b := range d.Baskets {
		total += len(b)
		st.Max = max(st.Max, len(b))
		for _, it := range b {
			seen[it] = struct{}{}
		}
	}
	st.Items = len(seen)
	if st.Baskets > 0 {
		st.Mean = float64(total) / float64(st.Baskets)
	}
	return st
}

// Split shuffles the baskets of d, from seed, and returns the first
// (1-testShare) of them as train and the rest as test (80/20 for a
// testShare of 0.2). The baskets are shared with d, not copied.
func Split(d Dataset, testShare float64, seed uint64) (train, test Dataset) {
	r := rand.New(rand.NewPCG(seed, 0x5b1175eed))
	order := r.Perm(len(d.Baskets))
	nTest := int(float64(len(d.Baskets))*min(max(testShare, 0), 1) + 0.5)
	train = Dataset{Name: d.Name + " (train)", Baskets: make([][]string, 0, len(d.Baskets)-nTest)}
	test = Dataset{Name: d.Name + " (test)", Baskets: make([][]string, 0, nTest)}
	for i, j := range order {
		if i < len(d.Baskets)-nTest {
			train.Baskets = append(train.Baskets, d.Baskets[j])
		} else {
			test.Baskets = append(test.Baskets, d.Baskets[j])
		}
	}
	return train, test
}

// set sorts b and removes its repetitions and empty ids, in place.
func set(b []string) []string {
	slices.Sort(b)
	b = slices.Compact(b)
	if len(b) > 0 && b[0] == "" {
		b = b[1:]
	}
	return b
}
