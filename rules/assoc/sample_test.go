package assoc_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tailorhq/tailor/rules/assoc"
)

// denseBaskets makes n dense baskets over nItems items: 8 to 40 items
// each, drawn with a mild skew, so that many consequents have similar
// frequencies, with a planted rule {i000, i001} => i002 and i003 => i004.
func denseBaskets(seed uint64, n, nItems int) [][]string {
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([][]string, n)
	for v := range out {
		set := map[int]bool{}
		size := 8 + r.IntN(33)
		for len(set) < size {
			set[int(float64(nItems)*math.Pow(r.Float64(), 1.5))] = true
		}
		if set[0] && set[1] && r.Float64() < 0.7 {
			set[2] = true
		}
		if set[3] && r.Float64() < 0.6 {
			set[4] = true
		}
		for it := range set {
			out[v] = append(out[v], fmt.Sprintf("i%03d", it))
		}
		slices.Sort(out[v])
	}
	return out
}

// Past MaxSample the model counts from a sample of the baskets; its counts
// and confidences stay within the bounds of the package documentation
// (three standard deviations of the sample's binomial error, for 99.7% of
// rules), and common items keep their rules.
func TestSampledWithinBound(t *testing.T) {
	t.Parallel()
	baskets := denseBaskets(1, 20_000, 200)
	// Direct counts: items, pairs, and the consequents of {i000, i001}.
	bf := brute{one: map[string]float64{}, two: map[[2]string]float64{}, tri: map[[3]string]float64{}}
	for _, b := range baskets {
		bf.n++
		both := slices.Contains(b, "i000") && slices.Contains(b, "i001")
		for i, x := range b {
			bf.one[x]++
			for _, y := range b[i+1:] {
				bf.two[[2]string{x, y}]++
			}
			if both && x != "i000" && x != "i001" {
				bf.tri[[3]string{"i000", "i001", x}]++
			}
		}
	}
	m := assoc.New(assoc.Config{MaxSample: 60_000, MinSupport: -1, MinConfidence: -1, MinLift: -1})
	for i, b := range baskets {
		// Half the visitors buy in two orders.
		if i%2 == 0 {
			m.Learn(assoc.Basket{}, assoc.Basket{Bought: b})
			continue
		}
		k := len(b) / 2
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: b[:k]})
		m.Learn(assoc.Basket{Bought: b[:k]}, assoc.Basket{Bought: b[k:]})
	}
	if err := assoc.CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	rate := st.SampleRate
	if rate >= 0.5 || rate < 1.0/64 || st.Baskets != int64(len(baskets)) {
		t.Fatalf("stats %+v: want a sample of 1/2 to 1/64 of %d baskets", st, len(baskets))
	}
	t.Logf("sample rate %g: %d of %d baskets", rate, st.Sampled, st.Baskets)
	var rules, over3 int
	worst := 0.0
	check := func(what string, got, want, sd float64) {
		rules++
		z := math.Abs(got-want) / sd
		worst = max(worst, z)
		if z > 3 {
			over3++
		}
		if z > 5 {
			t.Errorf("%s: %g, true %g, %.1f standard deviations away", what, got, want, z)
		}
	}
	items := []string{}
	for id, c := range bf.one {
		if c >= 500 {
			items = append(items, id)
		}
	}
	slices.Sort(items)
	for _, x := range items {
		rs := m.Rules(x)
		if len(rs) == 0 {
			t.Errorf("no rules for %s, in %g baskets", x, bf.one[x])
		}
		for _, r := range rs {
			c := bf.pair(x, r.Then)
			if c < 50 {
				continue
			}
			check(fmt.Sprintf("count of %v", r), r.Count, c, math.Sqrt(c*(1-rate)/rate))
			conf := c / bf.one[x]
			check(fmt.Sprintf("confidence of %v", r), r.Confidence, conf, math.Sqrt(conf*(1-conf)*(1-rate)/(rate*bf.one[x])))
		}
	}
	for _, r := range m.Rules("i000", "i001") {
		c := bf.triple("i000", "i001", r.Then)
		if c < 50 {
			continue
		}
		ante := bf.pair("i000", "i001")
		check(fmt.Sprintf("count of %v", r), r.Count, c, math.Sqrt(c*(1-rate)/rate))
		conf := c / ante
		check(fmt.Sprintf("confidence of %v", r), r.Confidence, conf, math.Sqrt(conf*(1-conf)*(1-rate)/(rate*ante)))
	}
	t.Logf("%d estimates checked, %d beyond 3 standard deviations, the worst %.2f", rules, over3, worst)
	if rules < 1000 {
		t.Fatalf("only %d estimates checked", rules)
	}
	if float64(over3) > 0.01*float64(rules) {
		t.Errorf("%d of %d estimates beyond 3 standard deviations, more than 1%%", over3, rules)
	}
	// The planted rules come first.
	if rs := m.Rules("i000", "i001"); len(rs) == 0 || rs[0].Then != "i002" || math.Abs(rs[0].Confidence-bf.triple("i000", "i001", "i002")/bf.pair("i000", "i001")) > 0.05 {
		t.Errorf("Rules(i000, i001) = %v, want i002 first", rs[:min(3, len(rs))])
	}
}
