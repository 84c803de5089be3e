package assoc_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// profileOf folds events, numbered in order, into a new profile.
func profileOf(events ...store.Event) *store.Profile {
	p := store.New("v")
	for i := range events {
		events[i].ID = store.EventID("t", uint64(i+1))
	}
	p.Apply(store.Limits{}, events...)
	return p
}

func at(t time.Time, e store.Event) store.Event {
	e.Time = t
	return e
}

func date(y int, m time.Month, d, h, min int, loc *time.Location) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, loc)
}

func track(name string) store.Event { return store.Event{Type: store.TypeTrack, Name: name} }

func identify(traits string) store.Event {
	return store.Event{Type: store.TypeIdentify, Traits: json.RawMessage(traits)}
}

// A buyer of December and April, with a few purchases in other months.
func seasonal() *store.Profile {
	var evs []store.Event
	aprilDays := []int{18, 22, 20, 19, 20}
	decDays := []int{9, 11, 10, 8, 12}
	for i, y := range []int{2021, 2022, 2023, 2024, 2025} {
		evs = append(evs,
			at(date(y, time.April, aprilDays[i], 10, 0, time.UTC), purchase(items("easter")...)),
			at(date(y, time.December, decDays[i], 18, 0, time.UTC), purchase(items("gift")...)))
	}
	evs = append(evs,
		at(date(2023, time.December, 20, 18, 0, time.UTC), purchase(items("late-gift")...)),
		at(date(2022, time.July, 3, 9, 0, time.UTC), purchase(items("noise")...)),
		at(date(2024, time.February, 14, 9, 0, time.UTC), purchase(items("noise")...)),
		at(date(2025, time.September, 1, 9, 0, time.UTC), purchase(items("noise")...)))
	slices.SortFunc(evs, func(a, b store.Event) int { return a.Time.Compare(b.Time) })
	return profileOf(evs...)
}

func TestPredictSeasons(t *testing.T) {
	t.Parallel()
	p := seasonal()
	for _, c := range []struct {
		now  time.Time
		next time.Time
	}{
		// After the last December purchase: next April, on the usual day.
		{date(2026, time.January, 15, 0, 0, time.UTC), date(2026, time.April, 20, 12, 0, time.UTC)},
		{date(2025, time.December, 20, 0, 0, time.UTC), date(2026, time.April, 20, 12, 0, time.UTC)},
		// Before it: this December.
		{date(2025, time.November, 2, 0, 0, time.UTC), date(2025, time.December, 10, 12, 0, time.UTC)},
		{date(2025, time.May, 2, 0, 0, time.UTC), date(2025, time.December, 10, 12, 0, time.UTC)},
	} {
		// Predict from the history known at c.now.
		var evs []store.Event
		for _, e := range p.Recent.Events() {
			if !e.Time.After(c.now) {
				evs = append(evs, e)
			}
		}
		pr := assoc.Predict(profileOf(evs...), c.now)
		if !slices.Equal(pr.UsualMonths, []int{4, 12}) {
			t.Errorf("at %s: usual months %v, want [4 12]", c.now.Format(time.DateOnly), pr.UsualMonths)
		}
		if !pr.NextPurchase.Equal(c.next) || pr.NextPurchaseBasis != "season" {
			t.Errorf("at %s: next purchase %s (%s), want %s", c.now.Format(time.DateOnly), pr.NextPurchase, pr.NextPurchaseBasis, c.next)
		}
	}
}

// A buyer of every month has no season.
func TestPredictNoSeason(t *testing.T) {
	t.Parallel()
	var evs []store.Event
	for m := range 36 {
		evs = append(evs, at(date(2023, time.Month(1+m), 5, 12, 0, time.UTC), purchase(items("coffee")...)))
	}
	pr := assoc.Predict(profileOf(evs...), date(2026, time.January, 10, 0, 0, time.UTC))
	if len(pr.UsualMonths) != 0 || pr.NextPurchaseBasis != "gap" {
		t.Errorf("monthly buyer: usual months %v, next purchase by %q; want none, by gap", pr.UsualMonths, pr.NextPurchaseBasis)
	}
}

func TestPredictChurn(t *testing.T) {
	t.Parallel()
	t0 := date(2025, time.March, 1, 12, 0, time.UTC)
	var evs []store.Event
	for i := range 6 {
		evs = append(evs, at(t0.AddDate(0, 0, 30*i), purchase(items("coffee")...)))
	}
	p := profileOf(evs...)
	last := p.Purchases.Last
	for _, c := range []struct {
		days     int
		min, max float64
	}{
		{3, 0.10, 0.13},
		{30, 0.22, 0.24},  // one gap late
		{60, 0.44, 0.46},  // two
		{150, 0.93, 0.95}, // five
	} {
		pr := assoc.Predict(p, last.AddDate(0, 0, c.days))
		if pr.GapDays != 30 || pr.DaysSincePurchase != float64(c.days) || pr.ChurnRisk < c.min || pr.ChurnRisk > c.max {
			t.Errorf("%d days after the last purchase: gap %g, since %g, churn %.3f; want 30, %d, [%g, %g]",
				c.days, pr.GapDays, pr.DaysSincePurchase, pr.ChurnRisk, c.days, c.min, c.max)
		}
		if !pr.NextPurchase.Equal(last.AddDate(0, 0, 30)) || pr.NextPurchaseBasis != "gap" || len(pr.UsualMonths) != 0 {
			t.Errorf("next purchase %s (%s), usual months %v; want %s by gap", pr.NextPurchase, pr.NextPurchaseBasis, pr.UsualMonths, last.AddDate(0, 0, 30))
		}
	}

	// An even number of gaps: the median is the mean of the middle two.
	evs = nil
	for _, d := range []int{0, 10, 30, 70, 120} {
		evs = append(evs, at(t0.AddDate(0, 0, d), purchase(items("tea")...)))
	}
	if pr := assoc.Predict(profileOf(evs...), t0.AddDate(0, 0, 121)); pr.GapDays != 30 {
		t.Errorf("gaps of 10, 20, 40 and 50 days: typical gap %g days, want 30", pr.GapDays)
	}

	// Without purchase events in the ring, the average gap of Purchases.
	q := store.New("q")
	q.Purchases = store.Purchases{Count: 5, First: t0, Last: t0.AddDate(0, 0, 120)}
	if pr := assoc.Predict(q, t0.AddDate(0, 0, 130)); pr.GapDays != 30 || pr.DaysSincePurchase != 10 || pr.ChurnRisk <= 0.1 || pr.ChurnRisk >= 0.2 {
		t.Errorf("from Purchases: %+v; want a 30-day gap, 10 days since, a low risk", pr)
	}
}

// contactHistory is a visitor of New York who opens and clicks emails on
// Tuesday evenings, and visits the site at all sorts of times.
func contactHistory(r *rand.Rand, withZone bool) *store.Profile {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	var evs []store.Event
	if withZone {
		evs = append(evs, at(date(2025, time.December, 1, 8, 0, ny), identify(`{"timezone":"America/New_York","plan":"pro"}`)))
	}
	tuesday := date(2025, time.December, 2, 20, 0, ny)
	for w := range 10 { // December to February: all in winter time
		day := tuesday.AddDate(0, 0, 7*w)
		evs = append(evs, at(day.Add(time.Duration(5+r.IntN(50))*time.Minute), track(assoc.EventEmailOpened)))
		if w%2 == 0 {
			evs = append(evs, at(day.Add(time.Duration(5+r.IntN(50))*time.Minute), track(assoc.EventEmailClicked)))
		}
		// Visits: a burst of pages at some hour of some day.
		visit := date(2025, time.December, 1, 0, 0, ny).AddDate(0, 0, r.IntN(70)).Add(time.Duration(r.IntN(24)) * time.Hour)
		for i := range 1 + r.IntN(8) {
			evs = append(evs, at(visit.Add(time.Duration(i)*time.Minute), view("x", "")))
		}
	}
	slices.SortFunc(evs, func(a, b store.Event) int { return a.Time.Compare(b.Time) })
	return profileOf(evs...)
}

func TestPredictContactTime(t *testing.T) {
	t.Parallel()
	now := date(2026, time.March, 1, 0, 0, time.UTC)
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed, 1))
		pr := assoc.Predict(contactHistory(r, true), now)
		if pr.BestHour != 20 || pr.BestWeekday != int(time.Tuesday) || pr.TimeZone != "America/New_York" {
			t.Errorf("seed %d: best %d h on day %d in %s, want 20 h on Tuesday in America/New_York", seed, pr.BestHour, pr.BestWeekday, pr.TimeZone)
		}
		// Without the zone, the same habit reads in UTC: 1 h on Wednesdays.
		pr = assoc.Predict(contactHistory(rand.New(rand.NewPCG(seed, 1)), false), now)
		if pr.BestHour != 1 || pr.BestWeekday != int(time.Wednesday) || pr.TimeZone != "UTC" {
			t.Errorf("seed %d without zone: best %d h on day %d in %s, want 1 h on Wednesday in UTC", seed, pr.BestHour, pr.BestWeekday, pr.TimeZone)
		}
	}
	// A habit around 20 h, spread over 19 h to 21 h, beats a busier 8 h.
	var evs []store.Event
	day := date(2026, time.January, 5, 0, 0, time.UTC)
	for i, h := range []int{19, 19, 19, 20, 20, 20, 21, 21, 8, 8, 8, 8} {
		evs = append(evs, at(day.AddDate(0, 0, i).Add(time.Duration(h)*time.Hour), track(assoc.EventEmailOpened)))
	}
	if pr := assoc.Predict(profileOf(evs...), now); pr.BestHour != 20 {
		t.Errorf("spread habit: best hour %d, want 20", pr.BestHour)
	}

	// An unknown zone falls back to UTC.
	p := profileOf(identify(`{"timezone":"Mars/Olympus_Mons"}`))
	if pr := assoc.Predict(p, now); pr.TimeZone != "UTC" || pr.BestHour != -1 {
		t.Errorf("unknown zone: %+v", pr)
	}
}

func TestPredictUnknown(t *testing.T) {
	t.Parallel()
	for _, p := range []*store.Profile{nil, store.New("new"), profileOf(at(date(2025, 5, 5, 5, 5, time.UTC), purchase(items("a")...)))} {
		pr := assoc.Predict(p, time.Now())
		if pr.ChurnRisk != -1 || pr.GapDays != 0 || pr.BestHour != -1 || pr.BestWeekday != -1 || !pr.NextPurchase.IsZero() || len(pr.UsualMonths) != 0 {
			t.Errorf("%+v: want unknowns", pr)
		}
	}
	b, err := json.Marshal(assoc.Predict(nil, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"usualMonths":[]`, `"churnRisk":-1`, `"bestHour":-1`, `"timezone":"UTC"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	if strings.Contains(string(b), "nextPurchase") {
		t.Errorf("JSON %s has a zero nextPurchase", b)
	}
}
