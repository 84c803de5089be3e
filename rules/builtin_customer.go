package rules

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/store"
)

// Rules over the visitor as a customer: lifecycle stage, RFM scores,
// seasonal buying, and sales channel.

// A Stage is a step of the customer lifecycle.
type Stage string

// The stages of the customer lifecycle: every tracked visitor is in
// exactly one of them, so segments of the four stages can share an
// exclusive group.
const (
	NonCustomer Stage = "non-customer" // no order
	OneTime     Stage = "one-time"     // fewer orders than Lifecycle.Repeat
	Repeat      Stage = "repeat"       // at least Lifecycle.Repeat orders, and not loyal
	Loyal       Stage = "loyal"        // at least Lifecycle.Loyal orders, the last within Lifecycle.LoyalWithin
)

// Lifecycle holds the thresholds between lifecycle stages.
type Lifecycle struct {
	// Repeat is the number of orders of a repeat customer; 0 means 2.
	Repeat int
	// Loyal is the number of orders of a loyal customer; 0 means 5. It is
	// more than Repeat.
	Loyal int
	// LoyalWithin, if positive, also wants a loyal customer's last order
	// within LoyalWithin: otherwise the customer is a repeat customer.
	LoyalWithin time.Duration
}

func (l Lifecycle) withDefaults() Lifecycle {
	if l.Repeat == 0 {
		l.Repeat = 2
	}
	if l.Loyal == 0 {
		l.Loyal = 5
	}
	return l
}

func (l Lifecycle) check() error {
	l = l.withDefaults()
	if l.Repeat < 2 || l.Loyal <= l.Repeat || l.LoyalWithin < 0 {
		return fmt.Errorf("bad thresholds: want 2 <= repeat (%d) < loyal (%d), and loyalWithin not negative", l.Repeat, l.Loyal)
	}
	return nil
}

// StageOf returns the lifecycle stage of the profile p at now.
func (l Lifecycle) StageOf(p *store.Profile, now time.Time) Stage {
	l = l.withDefaults()
	n := p.Purchases.Count
	switch {
	case n == 0:
		return NonCustomer
	case n < l.Repeat:
		return OneTime
	case n >= l.Loyal && (l.LoyalWithin <= 0 || !p.Purchases.Last.Before(now.Add(-l.LoyalWithin))):
		return Loyal
	}
	return Repeat
}

// LifecycleStage matches the customers in stage, with thresholds l. A
// visitor without a profile is in no stage.
func LifecycleStage(stage Stage, l Lifecycle) Rule {
	b := profileRule("lifecycle", func(in *Input, rec *condRecorder) (bool, error) {
		p := in.Profile
		got := l.StageOf(p, in.Now)
		if l := l.withDefaults(); l.LoyalWithin > 0 && p.Purchases.Count >= l.Loyal {
			in.ChangesAt(p.Purchases.Last.Add(l.LoyalWithin))
		}
		ok := got == stage
		if rec != nil {
			rec.fact(fmt.Sprintf("stage (%d orders)", p.Purchases.Count), "=", strconv.Quote(string(got)), strconv.Quote(string(stage)), ok)
		}
		return ok, nil
	})
	b.deps.Time = l.LoyalWithin > 0
	switch stage {
	case NonCustomer, OneTime, Repeat, Loyal:
		b.err = l.check()
	default:
		b.err = fmt.Errorf("unknown stage %q: want non-customer, one-time, repeat or loyal", stage)
	}
	return b
}

func parseLifecycle(l *loader, v *condJSON) Rule {
	a := l.args("lifecycle", v, "stage", "repeat", "loyal", "loyalWithin")
	a.require("stage")
	stage := a.oneOf("stage", "", string(NonCustomer), string(OneTime), string(Repeat), string(Loyal))
	lc := Lifecycle{Repeat: a.int("repeat", 2, 2), Loyal: a.int("loyal", 5, 3), LoyalWithin: a.dur("loyalWithin")}
	if a.ok && lc.Loyal <= lc.Repeat {
		a.bad("loyal", a.get("loyal"), "loyal (%d) must be more than repeat (%d)", lc.Loyal, lc.Repeat)
	}
	return a.done(LifecycleStage(Stage(stage), lc))
}

// RFM scores.

// RFMCuts are the cut points of RFM scores: four ascending values each,
// splitting the scores 1 to 5.
type RFMCuts struct {
	// Recency cuts the days since the last order: at most Recency[0]
	// days scores 5, at most Recency[1] 4, ... more than Recency[3] 1.
	Recency [4]float64
	// Frequency cuts the number of orders: fewer than Frequency[0] scores
	// 1, fewer than Frequency[1] 2, ... at least Frequency[3] 5.
	Frequency [4]float64
	// Monetary cuts the revenue, as Frequency cuts orders.
	Monetary [4]float64
}

// DefaultRFMCuts are the cut points used for zero RFMCuts fields.
var DefaultRFMCuts = RFMCuts{
	Recency:   [4]float64{30, 90, 180, 365},
	Frequency: [4]float64{2, 3, 5, 10},
	Monetary:  [4]float64{50, 200, 500, 1000},
}

func (c RFMCuts) withDefaults() RFMCuts {
	if c.Recency == [4]float64{} {
		c.Recency = DefaultRFMCuts.Recency
	}
	if c.Frequency == [4]float64{} {
		c.Frequency = DefaultRFMCuts.Frequency
	}
	if c.Monetary == [4]float64{} {
		c.Monetary = DefaultRFMCuts.Monetary
	}
	return c
}

func (c RFMCuts) check() error {
	c = c.withDefaults()
	for _, cuts := range [][4]float64{c.Recency, c.Frequency, c.Monetary} {
		for i, x := range cuts {
			if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) || i > 0 && x <= cuts[i-1] {
				return fmt.Errorf("cut points %v are not ascending non-negative numbers", cuts)
			}
		}
	}
	return nil
}

// Scores returns the RFM scores of p at now, each from 1 to 5, or zeros for
// a visitor who never ordered.
func (c RFMCuts) Scores(p *store.Profile, now time.Time) (r, f, m int) {
	if p == nil || p.Purchases.Count == 0 {
		return 0, 0, 0
	}
	c = c.withDefaults()
	days := now.Sub(p.Purchases.Last).Hours() / 24
	r = 5
	for _, x := range c.Recency {
		if days > x {
			r--
		}
	}
	up := func(v float64, cuts [4]float64) int {
		s := 1
		for _, x := range cuts {
			if v >= x {
				s++
			}
		}
		return s
	}
	return r, up(float64(p.Purchases.Count), c.Frequency), up(p.Purchases.Revenue, c.Monetary)
}

// A ScoreRange bounds a score: Min to Max, inclusive. Zero bounds are
// open: ScoreRange{} is any score.
type ScoreRange struct{ Min, Max int }

func (s ScoreRange) has(x int) bool {
	return (s.Min == 0 || x >= s.Min) && (s.Max == 0 || x <= s.Max)
}

func (s ScoreRange) String() string {
	lo, hi := max(s.Min, 1), s.Max
	if hi == 0 {
		hi = 5
	}
	if lo == hi {
		return itoa(lo)
	}
	return fmt.Sprintf("[%d,%d]", lo, hi)
}

// RFMScores selects RFM scores for RFM.
type RFMScores struct {
	Cuts    RFMCuts
	R, F, M ScoreRange
}

// RFM matches customers whose recency, frequency and monetary scores (see
// RFMCuts.Scores) are in the given ranges: "best customers" are
//
//	RFM(RFMScores{R: ScoreRange{Min: 4}, F: ScoreRange{Min: 4}, M: ScoreRange{Min: 4}})
//
// Visitors who never ordered have no scores and do not match.
func RFM(s RFMScores) Rule {
	b := profileRule("rfm", func(in *Input, rec *condRecorder) (bool, error) {
		p := in.Profile
		r, f, m := s.Cuts.Scores(p, in.Now)
		if r > 0 {
			// The recency score drops when the last order passes the next
			// cut point.
			cuts := s.Cuts.withDefaults().Recency
			for _, x := range cuts {
				if edge := p.Purchases.Last.Add(time.Duration(x * 24 * float64(time.Hour))); !edge.Before(in.Now) {
					in.ChangesAt(edge)
					break
				}
			}
		}
		okR, okF, okM := r > 0 && s.R.has(r), f > 0 && s.F.has(f), m > 0 && s.M.has(m)
		if rec != nil {
			rec.fact("rfm.recency", "in", itoa(r), s.R.String(), okR)
			rec.fact("rfm.frequency", "in", itoa(f), s.F.String(), okF)
			rec.fact("rfm.monetary", "in", itoa(m), s.M.String(), okM)
		}
		return okR && okF && okM, nil
	})
	b.deps.Time = true
	b.err = s.Cuts.check()
	for _, r := range []ScoreRange{s.R, s.F, s.M} {
		if r.Min < 0 || r.Min > 5 || r.Max < 0 || r.Max > 5 || r.Max != 0 && r.Max < r.Min {
			b.err = fmt.Errorf("bad score range %d to %d: scores are 1 to 5", r.Min, r.Max)
		}
	}
	return b
}

func parseRFM(l *loader, v *condJSON) Rule {
	a := l.args("rfm", v, "r", "f", "m", "cuts")
	s := RFMScores{R: scoreRange(a, "r"), F: scoreRange(a, "f"), M: scoreRange(a, "m")}
	if !a.has("r") && !a.has("f") && !a.has("m") && a.ok {
		a.fail(`rfm needs at least one of "r", "f" and "m"`)
	}
	if c := a.get("cuts"); c != nil {
		l.push("cuts")
		ca := l.args("cuts", c, "recency", "frequency", "monetary")
		s.Cuts.Recency = cutPoints(ca, "recency")
		s.Cuts.Frequency = cutPoints(ca, "frequency")
		s.Cuts.Monetary = cutPoints(ca, "monetary")
		l.pop()
		a.ok = a.ok && ca.ok
	}
	return a.done(RFM(s))
}

// scoreRange reads a score, 1 to 5, or a range [min, max].
func scoreRange(a *args, key string) ScoreRange {
	v := a.get(key)
	if v == nil {
		return ScoreRange{}
	}
	score := func(e *condJSON) (int, bool) {
		if e.Kind != condNum || e.Num != math.Trunc(e.Num) || e.Num < 1 || e.Num > 5 {
			return 0, false
		}
		return int(e.Num), true
	}
	if x, ok := score(v); ok {
		return ScoreRange{x, x}
	}
	if v.Kind == condArr && len(v.Elems) == 2 {
		lo, ok1 := score(v.Elems[0])
		hi, ok2 := score(v.Elems[1])
		if ok1 && ok2 && lo <= hi {
			return ScoreRange{lo, hi}
		}
	}
	a.bad(key, v, "%s is a score from 1 to 5 or a range [min, max] of scores, not %s", key, condText(v))
	return ScoreRange{}
}

// cutPoints reads four ascending non-negative numbers.
func cutPoints(a *args, key string) [4]float64 {
	var out [4]float64
	v := a.get(key)
	if v == nil {
		return out
	}
	ok := v.Kind == condArr && len(v.Elems) == 4
	for i := 0; ok && i < 4; i++ {
		e := v.Elems[i]
		ok = e.Kind == condNum && e.Num >= 0 && !math.IsInf(e.Num, 0) && (i == 0 || e.Num > out[i-1])
		out[i] = e.Num
	}
	if !ok {
		a.bad(key, v, "%s needs four ascending non-negative numbers, not %s", key, condText(v))
		return [4]float64{}
	}
	return out
}

// Seasonal buying.

// Seasonal selects seasonal buyers for SeasonalBuyer.
type Seasonal struct {
	// Months are the months of the season. Required.
	Months []time.Month
	// Share is the least share of the visitor's orders placed in those
	// months; 0 means 0.5.
	Share float64
	// MinOrders is the least number of orders; 0 means 2.
	MinOrders int
	// Each, if true, also wants an order in each of the months.
	Each bool
}

// SeasonalBuyer matches visitors who usually buy in the given months, by
// the months of their orders (Purchases.Months): "buys in December and
// April" is
//
//	SeasonalBuyer(Seasonal{Months: []time.Month{time.December, time.April}, Each: true})
func SeasonalBuyer(s Seasonal) Rule {
	share, minOrders := s.Share, s.MinOrders
	if share == 0 {
		share = 0.5
	}
	if minOrders == 0 {
		minOrders = 2
	}
	b := profileRule("seasonal", func(in *Input, rec *condRecorder) (bool, error) {
		hist := &in.Profile.Purchases.Months
		total, in0 := 0, 0
		each := true
		for m, n := range hist {
			total += n
			if slices.Contains(s.Months, time.Month(m+1)) {
				in0 += n
				each = each && n > 0
			}
		}
		got := 0.0
		if total > 0 {
			got = float64(in0) / float64(total)
		}
		okN, okShare, okEach := total >= minOrders, total > 0 && got >= share, !s.Each || each
		if rec != nil {
			rec.fact("purchases.months", "histogram", monthsText(hist), monthList(s.Months), okN && okShare && okEach)
			rec.fact("orders", ">=", itoa(total), itoa(minOrders), okN)
			rec.fact("share of orders in "+monthList(s.Months), ">=", formatFloat(got), formatFloat(share), okShare)
			if s.Each {
				rec.fact("an order in each month", "=", strconv.FormatBool(each), "true", okEach)
			}
		}
		return okN && okShare && okEach, nil
	})
	switch {
	case len(s.Months) == 0:
		b.err = errors.New("no months")
	case share < 0 || share > 1 || math.IsNaN(share):
		b.err = fmt.Errorf("share %v is not between 0 and 1", share)
	case minOrders < 0:
		b.err = fmt.Errorf("negative minOrders %d", minOrders)
	}
	for _, m := range s.Months {
		if m < time.January || m > time.December {
			b.err = fmt.Errorf("no month %d", m)
		}
	}
	return b
}

func monthsText(m *[12]int) string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for i, n := range m {
		if n == 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:%d", monthNames[i], n)
	}
	b.WriteByte('}')
	return b.String()
}

func monthList(ms []time.Month) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		if m >= time.January && m <= time.December {
			names[i] = strconv.Quote(monthNames[m-1])
		}
	}
	return "[" + strings.Join(names, ",") + "]"
}

var monthNames = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// months reads a list of months: numbers 1 to 12 or names ("dec",
// "December").
func months(a *args, key string) []time.Month {
	v := a.get(key)
	if v == nil {
		return nil
	}
	if v.Kind != condArr || len(v.Elems) == 0 {
		a.bad(key, v, `%s needs a list of months, such as ["dec", "apr"] or [12, 4], not %s`, key, describe(v))
		return nil
	}
	var out []time.Month
	for i, e := range v.Elems {
		m := time.Month(0)
		switch e.Kind {
		case condNum:
			if e.Num == math.Trunc(e.Num) && e.Num >= 1 && e.Num <= 12 {
				m = time.Month(e.Num)
			}
		case condStr:
			s := strings.ToLower(e.Str)
			for k, n := range monthNames {
				if s == n || s == strings.ToLower(time.Month(k+1).String()) {
					m = time.Month(k + 1)
				}
			}
		}
		if m == 0 {
			a.l.push(key)
			a.bad(strconv.Itoa(i), e, `a month is a number from 1 to 12 or a name such as "dec", not %s`, describe(e))
			a.l.pop()
			continue
		}
		out = append(out, m)
	}
	return out
}

func parseSeasonal(l *loader, v *condJSON) Rule {
	a := l.args("seasonal", v, "months", "share", "minOrders", "each")
	a.require("months")
	s := Seasonal{Months: months(a, "months"), Share: a.float("share", 0.5, 0), MinOrders: a.int("minOrders", 2, 1), Each: a.boolean("each", false)}
	if s.Share > 1 {
		a.bad("share", a.get("share"), "share is between 0 and 1, not %s", formatFloat(s.Share))
	}
	return a.done(SeasonalBuyer(s))
}

// Due selects visitors due to buy, for DueToBuy.
type Due struct {
	// Within is how soon the visitor's season must start. Required.
	Within time.Duration
	// MinOrders is how many orders a month needs to be one of the
	// visitor's buying months; 0 means 2 (say, two Decembers).
	MinOrders int
}

// DueToBuy matches visitors due to buy within d.Within: one of their
// buying months (a month with at least d.MinOrders of their orders) starts
// within d.Within, or has started and they have not ordered since. Months
// are those of the time of evaluation's location.
func DueToBuy(d Due) Rule {
	minOrders := d.MinOrders
	if minOrders == 0 {
		minOrders = 2
	}
	b := profileRule("dueToBuy", func(in *Input, rec *condRecorder) (bool, error) {
		p := in.Profile
		now := in.Now
		loc := now.Location()
		thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
		nextMonth := thisMonth.AddDate(0, 1, 0)
		in.ChangesAt(nextMonth)
		ok := false
		due := ""
		var buying []time.Month
		for i, n := range p.Purchases.Months {
			if n < minOrders {
				continue
			}
			m := time.Month(i + 1)
			buying = append(buying, m)
			if m == now.Month() {
				if p.Purchases.Last.Before(thisMonth) {
					ok, due = true, fmt.Sprintf("%q, no order yet", monthNames[i])
				}
				continue
			}
			start := time.Date(now.Year(), m, 1, 0, 0, 0, 0, loc)
			if start.Before(now) {
				start = start.AddDate(1, 0, 0)
			}
			if open := start.Add(-d.Within); !open.After(now) {
				if !ok {
					ok, due = true, fmt.Sprintf("%q starts %s", monthNames[i], string(appendJSONTime(nil, start)))
				}
			} else {
				in.ChangesAt(open)
			}
		}
		if rec != nil {
			actual := "null"
			if ok {
				actual = due
			}
			rec.fact("buying months "+monthList(buying), "due within", actual, formatDuration(d.Within), ok)
		}
		return ok, nil
	})
	b.deps.Time = true
	switch {
	case d.Within <= 0:
		b.err = errors.New("within must be a positive duration")
	case minOrders < 0:
		b.err = fmt.Errorf("negative minOrders %d", minOrders)
	}
	return b
}

func parseDueToBuy(l *loader, v *condJSON) Rule {
	a := l.args("dueToBuy", v, "within", "minOrders")
	a.require("within")
	return a.done(DueToBuy(Due{Within: a.dur("within"), MinOrders: a.int("minOrders", 2, 1)}))
}

// Channel selects the sales channel for InChannel.
type Channel struct {
	// Is is the channel wanted, compared ignoring case: "online",
	// "in-store"...
	Is string
	// Trait is the gjson path of the trait holding the visitor's channel;
	// "" means "channel".
	Trait string
	// Property is the event property holding a channel, read from the
	// newest event of the ring of recent events that has it; "" means
	// "channel".
	Property string
	// Default is the channel of visitors with neither; "" means "online".
	Default string
}

// InChannel matches visitors whose channel is c.Is: the value of their
// channel trait if they have one, else the channel property of their
// newest event that has one, else c.Default. A visitor without a profile
// is in the default channel.
func InChannel(c Channel) Rule {
	if c.Trait == "" {
		c.Trait = "channel"
	}
	if c.Property == "" {
		c.Property = "channel"
	}
	if c.Default == "" {
		c.Default = "online"
	}
	b := &builtin{name: "channel"}
	b.f = func(in *Input, rec *condRecorder) (bool, error) {
		got, from := c.Default, "default"
		if t := in.Trait(c.Trait); t.Type == gjson.String && t.Str != "" {
			got, from = t.Str, "traits."+c.Trait
		} else if p := in.Profile; p != nil {
			for i := p.Recent.Len() - 1; i >= 0; i-- {
				e := p.Recent.At(i)
				if len(e.Props) == 0 {
					continue
				}
				if v := rawResult(e.Props).Get(c.Property); v.Type == gjson.String && v.Str != "" {
					got, from = v.Str, "props."+c.Property+" of the newest event"
					break
				}
			}
		}
		ok := strings.EqualFold(got, c.Is)
		if rec != nil {
			rec.fact("channel ("+from+")", "=", strconv.Quote(got), strconv.Quote(c.Is), ok)
		}
		return ok, nil
	}
	if c.Is == "" {
		b.err = errors.New("empty channel")
	}
	return b
}

func parseChannel(l *loader, v *condJSON) Rule {
	a := l.args("channel", v, "is", "trait", "property", "default")
	a.require("is")
	return a.done(InChannel(Channel{Is: a.str("is"), Trait: a.str("trait"), Property: a.str("property"), Default: a.str("default")}))
}
