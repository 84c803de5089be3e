package assoc

import (
	"encoding/json"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/tailorhq/tailor/store"
)

// Track event names that Predict reads.
const (
	EventEmailOpened  = "email_opened"
	EventEmailClicked = "email_clicked"
)

// TraitTimeZone is the trait that holds a visitor's IANA time zone name
// ("Europe/Paris"), in which Predict reads hours and days.
const TraitTimeZone = "timezone"

// churnPrior is the probability, before looking at the silence since the
// last purchase, that a buyer has stopped buying.
const churnPrior = 0.1

// Predictions are what one visitor's history suggests. Unknown numbers are
// -1 (0 for GapDays), unknown times zero; the JSON form is meant for segment
// conditions and exports.
type Predictions struct {
	// UsualMonths are the months (1 to 12) in which the visitor usually
	// buys: those with at least two orders, more than twice the orders of
	// an average month (in Purchases.Months), in at least two different
	// years (when the Recent ring no longer holds them all: in a purchase
	// history longer than a year).
	UsualMonths []int `json:"usualMonths"`
	// NextPurchase is when the next purchase is expected: for a seasonal
	// buyer, in the next usual month (not counting the current month once
	// the visitor bought in it), on the visitor's usual day of that month
	// when known (the 15th otherwise); else the last purchase plus the
	// typical gap. It lies in the past when the visitor is late.
	NextPurchase time.Time `json:"nextPurchase,omitzero"`
	// NextPurchaseBasis says how NextPurchase was found: "season", "gap",
	// or "" when it is unknown.
	NextPurchaseBasis string `json:"nextPurchaseBasis,omitempty"`
	// GapDays is the visitor's typical time between purchases, in days: the
	// median gap between the purchase events in Recent, or else the average
	// gap from Purchases.First, Last and Count. 0 when unknown.
	GapDays float64 `json:"gapDays"`
	// DaysSincePurchase is the time since the last purchase, in days; -1
	// for a visitor who never bought.
	DaysSincePurchase float64 `json:"daysSincePurchase"`
	// ChurnRisk is the probability, from 0 to 1, that the visitor has
	// stopped buying, given the silence since the last purchase measured
	// against the visitor's own gap; -1 when the gap is unknown. See the
	// package documentation.
	ChurnRisk float64 `json:"churnRisk"`
	// BestHour (0 to 23) and BestWeekday (0 Sunday to 6 Saturday) are when
	// the visitor is most responsive, from email opens and clicks and visits
	// in Recent, in TimeZone; -1 when there is too little to tell.
	BestHour    int `json:"bestHour"`
	BestWeekday int `json:"bestWeekday"`
	// TimeZone is the zone hours and days are in: the visitor's timezone
	// trait when it names a known zone, else "UTC".
	TimeZone string `json:"timezone"`
}

// Weights of the signals of responsiveness: a click says more than an
// open, which says more than a visit.
const (
	wClick = 3
	wOpen  = 2
	wVisit = 1
	// minContact is the least total weight for BestHour and BestWeekday.
	minContact = 3
)

// Predict computes the predictions for the visitor of profile p at time
// now. It reads only p: purchases (Purchases and the purchase events in
// Recent), email and page events in Recent, and the timezone trait.
func Predict(p *store.Profile, now time.Time) Predictions {
	pr := Predictions{UsualMonths: []int{}, DaysSincePurchase: -1, ChurnRisk: -1, BestHour: -1, BestWeekday: -1, TimeZone: "UTC"}
	if p == nil {
		return pr
	}
	loc := time.UTC
	if l := location(p); l != nil {
		loc, pr.TimeZone = l, l.String()
	}

	// Purchases in the ring.
	var buys []time.Time
	for i := range p.Recent.Len() {
		e := p.Recent.At(i)
		if e.Type == store.TypeTrack && e.Name == store.EventPurchase && !e.Time.IsZero() {
			buys = append(buys, e.Time)
		}
	}
	slices.SortFunc(buys, time.Time.Compare)

	// Gap and churn.
	var gap time.Duration
	if len(buys) >= 2 {
		var gaps []time.Duration
		for i := 1; i < len(buys); i++ {
			if d := buys[i].Sub(buys[i-1]); d > 0 {
				gaps = append(gaps, d)
			}
		}
		if len(gaps) > 0 {
			slices.Sort(gaps)
			gap = gaps[len(gaps)/2]
			if len(gaps)%2 == 0 {
				gap = (gaps[len(gaps)/2-1] + gaps[len(gaps)/2]) / 2
			}
		}
	}
	pu := &p.Purchases
	if gap == 0 && pu.Count >= 2 && pu.Last.After(pu.First) {
		gap = pu.Last.Sub(pu.First) / time.Duration(pu.Count-1)
	}
	pr.GapDays = gap.Hours() / 24
	if !pu.Last.IsZero() {
		since := max(now.Sub(pu.Last), 0)
		pr.DaysSincePurchase = since.Hours() / 24
		if gap > 0 {
			stay := (1 - churnPrior) * math.Exp(-float64(since)/float64(gap))
			pr.ChurnRisk = churnPrior / (churnPrior + stay)
		}
	}

	// Seasons.
	total := 0
	for _, n := range pu.Months {
		total += n
	}
	var ringN [12]int
	var years [12][]int
	for _, t := range buys {
		m := t.Month() - 1 // in the event time's own zone, as Purchases.Months
		ringN[m]++
		if !slices.Contains(years[m], t.Year()) {
			years[m] = append(years[m], t.Year())
		}
	}
	longHistory := pu.Last.Sub(pu.First) >= 365*24*time.Hour
	for m, n := range pu.Months {
		// The ring tells the years of a month's orders when it holds them
		// all; otherwise a history longer than a year has to do.
		yearly := len(years[m]) >= 2 || ringN[m] < n && longHistory
		if n >= 2 && float64(n) > 2*float64(total)/12 && yearly {
			pr.UsualMonths = append(pr.UsualMonths, m+1)
		}
	}
	nowL := now.In(loc)
	if len(pr.UsualMonths) > 0 {
		lastL := pu.Last.In(loc)
		for off := range 13 {
			first := time.Date(nowL.Year(), nowL.Month()+time.Month(off), 1, 12, 0, 0, 0, loc)
			if !slices.Contains(pr.UsualMonths, int(first.Month())) {
				continue
			}
			if off == 0 && !pu.Last.IsZero() && lastL.Year() == nowL.Year() && lastL.Month() == nowL.Month() {
				continue
			}
			d := usualDay(buys, first.Month(), loc)
			days := time.Date(first.Year(), first.Month()+1, 0, 0, 0, 0, 0, loc).Day()
			pr.NextPurchase = first.AddDate(0, 0, min(d, days)-1)
			pr.NextPurchaseBasis = "season"
			break
		}
	} else if gap > 0 && !pu.Last.IsZero() {
		pr.NextPurchase = pu.Last.Add(gap).In(loc)
		pr.NextPurchaseBasis = "gap"
	}

	// Best time to contact.
	var hours [24]float64
	var days [7]float64
	visited := make(map[int64]bool)
	total = 0
	for i := range p.Recent.Len() {
		e := p.Recent.At(i)
		if e.Time.IsZero() {
			continue
		}
		t := e.Time.In(loc)
		var w int
		switch {
		case e.Type == store.TypeTrack && e.Name == EventEmailClicked:
			w = wClick
		case e.Type == store.TypeTrack && e.Name == EventEmailOpened:
			w = wOpen
		case e.Type == store.TypePage:
			// One visit signal per hour of activity, however many pages.
			slot := int64(t.Year())*1e6 + int64(t.YearDay())*100 + int64(t.Hour())
			if visited[slot] {
				continue
			}
			visited[slot] = true
			w = wVisit
		default:
			continue
		}
		hours[t.Hour()] += float64(w)
		days[t.Weekday()] += float64(w)
		total += w
	}
	if total >= minContact {
		best := -1.0
		for h := range 24 {
			// Neighbouring hours count half: 19:55 and 20:05 are one habit.
			sc := 2*hours[h] + hours[(h+23)%24] + hours[(h+1)%24]
			if sc > best {
				best, pr.BestHour = sc, h
			}
		}
		best = -1
		for d := range 7 {
			if days[d] > best {
				best, pr.BestWeekday = days[d], d
			}
		}
	}
	return pr
}

// usualDay returns the median day of the month of the purchases in buys
// made in month m, in loc; 15 when there are none.
func usualDay(buys []time.Time, m time.Month, loc *time.Location) int {
	var ds []int
	for _, t := range buys {
		if t := t.In(loc); t.Month() == m {
			ds = append(ds, t.Day())
		}
	}
	if len(ds) == 0 {
		return 15
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

var locations sync.Map // IANA name -> *time.Location; only valid names

// location returns the visitor's time zone from the timezone trait, or nil.
func location(p *store.Profile) *time.Location {
	raw := p.Trait(TraitTimeZone)
	if len(raw) == 0 {
		return nil
	}
	var name string
	if json.Unmarshal(raw, &name) != nil || name == "" || len(name) > 64 || name == "Local" {
		return nil
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	locations.Store(name, l)
	return l
}
