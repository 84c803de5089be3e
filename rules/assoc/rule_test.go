package assoc_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

func TestLikelyToBuy(t *testing.T) {
	t.Parallel()
	m := assoc.New(assoc.DefaultConfig)
	for i := range 100 {
		b := assoc.Basket{Bought: []string{"moneyball", "red-sox-banner"}}
		if i%5 != 0 { // 80% also bought the Potato Head
			b.Bought = append(b.Bought, "red-sox-potato-head")
		}
		m.Learn(assoc.Basket{}, b)
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: []string{fmt.Sprintf("noise-%d", i%7), "snowshoes"}})
	}
	buyer := store.New("v")
	buyer.Purchases.Items = map[string]int{"moneyball": 1, "red-sox-banner": 1}
	owner := store.New("w")
	owner.Purchases.Items = map[string]int{"moneyball": 1, "red-sox-banner": 1, "red-sox-potato-head": 1}
	for _, tc := range []struct {
		p    *store.Profile
		min  float64
		want bool
	}{
		{buyer, 0.75, true},
		{buyer, 0.85, false},
		{owner, 0.5, false}, // bought it already
		{store.New("x"), 0.1, false},
		{nil, 0.1, false}, // not tracked
	} {
		got, err := assoc.LikelyToBuy(m, "red-sox-potato-head", tc.min).Match(&rules.Input{Profile: tc.p})
		if err != nil || got != tc.want {
			t.Errorf("profile %v, min %.2f: %v, %v; want %v", tc.p, tc.min, got, err, tc.want)
		}
	}
}

func TestChurnRiskAbove(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	buyer := func(lastDaysAgo int) *store.Profile {
		p := store.New("v")
		for i := range 6 { // a purchase every 30 days
			at := now.AddDate(0, 0, -lastDaysAgo-30*(5-i))
			p.Apply(store.Limits{}, store.Event{ID: fmt.Sprintf("p:%d", i+1), Type: store.TypeTrack, Name: store.EventPurchase, Time: at,
				Items: []store.Item{{ID: "moneyball", Price: 10}}})
		}
		return p
	}
	rule := assoc.ChurnRiskAbove(0.8)
	for _, tc := range []struct {
		p    *store.Profile
		want bool
	}{
		{buyer(5), false},  // bought 5 days ago, usual gap 30 days
		{buyer(200), true}, // silent for 200 days
		{store.New("x"), false},
		{nil, false},
	} {
		got, err := rule.Match(&rules.Input{Profile: tc.p, Now: now})
		if err != nil || got != tc.want {
			t.Errorf("%v: %v, %v; want %v (risk %v)", tc.p != nil, got, err, tc.want, func() float64 {
				if tc.p == nil {
					return -1
				}
				return assoc.Predict(tc.p, now).ChurnRisk
			}())
		}
	}
}
