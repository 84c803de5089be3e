package rules

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/store"
)

// Rules over what the visitor did: pages, events, recency, email
// engagement and interests. Windows ("in the last 7 days") are counted over
// the ring of recent events, which holds the visitor's last
// store.Limits.Recent events (200 by default): events older than the ring
// are not counted in a window.

// PathMatch says how a path pattern matches a page's path.
type PathMatch uint8

const (
	// PathAuto matches as PathGlob if the pattern has "*", "?" or "[",
	// as PathExact otherwise.
	PathAuto PathMatch = iota
	// PathExact matches the path itself.
	PathExact
	// PathPrefix matches paths that start with the pattern.
	PathPrefix
	// PathGlob matches with path.Match: "*" matches within a segment
	// ("/docs/*" matches "/docs/a" but not "/docs/a/b").
	PathGlob
)

var pathMatchNames = [...]string{"auto", "exact", "prefix", "glob"}

func (m PathMatch) String() string {
	if int(m) < len(pathMatchNames) {
		return pathMatchNames[m]
	}
	return fmt.Sprintf("PathMatch(%d)", m)
}

// pathPattern is a compiled path pattern.
type pathPattern struct {
	pat  string
	kind PathMatch // never PathAuto
}

func newPathPattern(pat string, kind PathMatch) (pathPattern, error) {
	if kind == PathAuto {
		kind = PathExact
		if strings.ContainsAny(pat, "*?[") {
			kind = PathGlob
		}
	}
	p := pathPattern{pat: pat, kind: kind}
	switch {
	case pat == "":
		return p, errors.New("empty path pattern")
	case kind > PathGlob:
		return p, fmt.Errorf("unknown path match %d", kind)
	case kind == PathGlob:
		if _, err := path.Match(pat, ""); err != nil {
			return p, fmt.Errorf("bad glob pattern %q: %v", pat, err)
		}
	}
	return p, nil
}

func (p pathPattern) match(s string) bool {
	switch p.kind {
	case PathExact:
		return s == p.pat
	case PathPrefix:
		return strings.HasPrefix(s, p.pat)
	}
	ok, _ := path.Match(p.pat, s)
	return ok
}

func (p pathPattern) String() string {
	if p.kind == PathPrefix {
		return p.pat + "…"
	}
	return p.pat
}

// PageVisits selects page views for PageVisited.
type PageVisits struct {
	// Path is the pattern of the pages' paths, matched as Match says.
	Path  string
	Match PathMatch
	// Min is the least number of views; 0 means 1.
	Min int
	// Within, if positive, counts only the views of the last Within, in
	// the ring of recent events; otherwise every view counts (the
	// profile's page counts).
	Within time.Duration
}

// PageVisited matches visitors who viewed pages matching v.Path at least
// v.Min times, over their whole history or within v.Within: "visited the
// pricing page twice this week" is
//
//	PageVisited(PageVisits{Path: "/pricing", Min: 2, Within: 7 * 24 * time.Hour})
//
// A bad glob pattern is reported by NewSet.
func PageVisited(v PageVisits) Rule {
	min := max(v.Min, 1)
	pat, err := newPathPattern(v.Path, v.Match)
	var part store.Touch
	if pat.kind == PathExact {
		part = store.TouchPage(pat.pat)
	} else {
		part = store.TouchAll // any page's count
	}
	b := touching(profileRule("pageVisited", func(in *Input, rec *condRecorder) (bool, error) {
		p := in.Profile
		n := 0
		if v.Within > 0 {
			// Events entering the ring may push others out of it.
			in.touch(store.TouchRecent)
		}
		if v.Within <= 0 {
			if pat.kind == PathExact {
				n = p.Pages[pat.pat]
			} else {
				for path, c := range p.Pages {
					if pat.match(path) {
						n += c
					}
				}
			}
		} else {
			since := in.Now.Add(-v.Within)
			var first time.Time
			for i := ringStart(p, &in.eval().doc, since); i < p.Recent.Len(); i++ {
				e := p.Recent.At(i)
				if e.Type != store.TypePage || e.Time.Before(since) || !pat.match(e.Path) {
					continue
				}
				n++
				if first.IsZero() || e.Time.Before(first) {
					first = e.Time
				}
			}
			if n > 0 {
				in.ChangesAt(first.Add(v.Within))
			}
		}
		ok := n >= min
		if !ok && v.Within <= 0 {
			in.touch(part) // else true for good: the counts only grow
		}
		if rec != nil {
			rec.fact("pages["+pat.String()+"]"+windowText(v.Within), ">=", itoa(n), itoa(min), ok)
		}
		return ok, nil
	}))
	b.deps.Time = v.Within > 0
	b.err = err
	return b
}

func windowText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return " within " + formatDuration(d)
}

func parsePageVisited(l *loader, v *condJSON) Rule {
	a := l.args("pageVisited", v, "path", "match", "min", "within")
	a.require("path")
	pv := PageVisits{Path: a.str("path"), Min: a.int("min", 1, 1), Within: a.dur("within")}
	switch a.oneOf("match", "auto", "auto", "exact", "prefix", "glob") {
	case "exact":
		pv.Match = PathExact
	case "prefix":
		pv.Match = PathPrefix
	case "glob":
		pv.Match = PathGlob
	}
	if pv.Path != "" {
		if _, err := newPathPattern(pv.Path, pv.Match); err != nil {
			a.bad("path", a.get("path"), "%v", err)
		}
	}
	return a.done(PageVisited(pv))
}

func parsePurchased(l *loader, v *condJSON) Rule {
	a := l.args("purchased", v, "min")
	return a.done(Purchased(a.int("min", 1, 0)))
}

func parseVisits(l *loader, v *condJSON) Rule {
	a := l.args("visits", v, "min")
	a.require("min")
	return a.done(Visits(a.int("min", 1, 0)))
}

func parseCategoryViews(l *loader, v *condJSON) Rule {
	a := l.args("categoryViews", v, "category", "min")
	a.require("category")
	return a.done(CategoryViews(a.str("category"), a.int("min", 1, 0)))
}

// Events selects events for CountEvents.
type Events struct {
	// Name is the events' name: "page", "identify", or a track event's
	// name ("purchase", "add_to_cart"...). Required.
	Name string
	// Where, if set, is a condition on the events' properties (Props):
	// {"plan": "pro"}, {"value": {"$gt": 10}}.
	Where *Condition
	// Min and Max bound the count. Max 0 means no maximum; if both are 0,
	// Min is 1. (For "never", use Not, or "max": 0 in a file.)
	Min, Max int
	// Within, if positive, counts only the events of the last Within.
	// With Within or Where, events are counted in the ring of recent
	// events; otherwise in the profile's counts, over the whole history.
	Within time.Duration
}

// CountEvents matches visitors whose count of events selected by e is
// within e's bounds.
func CountEvents(e Events) Rule {
	min, max, hasMax := e.Min, e.Max, e.Max > 0
	if min == 0 && max == 0 {
		min = 1
	}
	return countEvents(e.Name, e.Where, min, max, hasMax, e.Within)
}

func countEvents(name string, where *Condition, min, max int, hasMax bool, within time.Duration) Rule {
	part := store.TouchCount(name)
	b := touching(profileRule("eventCount", func(in *Input, rec *condRecorder) (bool, error) {
		p := in.Profile
		n := 0
		if where == nil && within <= 0 {
			n = p.Counts[name]
		} else {
			in.touch(store.TouchRecent) // the ring: events enter it and push others out
			var since, first time.Time
			if within > 0 {
				since = in.Now.Add(-within)
			}
			ev := in.eval()
			env := condEnv{now: in.Now, x: &ev.track}
			start := 0
			if within > 0 {
				start = ringStart(p, &ev.doc, since)
			}
			for i := start; i < p.Recent.Len(); i++ {
				e := p.Recent.At(i)
				if eventKey(e) != name || within > 0 && e.Time.Before(since) {
					continue
				}
				if where != nil && where.root.eval(env, rawResult(e.Props)) != condPass {
					continue
				}
				n++
				if first.IsZero() || e.Time.Before(first) {
					first = e.Time
				}
			}
			if n > 0 && within > 0 {
				in.ChangesAt(first.Add(within))
			}
		}
		ok := n >= min && (!hasMax || n <= max)
		if !ok || hasMax {
			in.touch(part) // else true for good: the counts only grow
		}
		if rec != nil {
			what := "events[" + name + "]"
			if where != nil {
				what += " where " + condText(where.src)
			}
			what += windowText(within)
			rec.fact(what, ">=", itoa(n), itoa(min), n >= min)
			if hasMax {
				rec.fact(what, "<=", itoa(n), itoa(max), n <= max)
			}
		}
		return ok, nil
	}))
	b.deps.Time = within > 0 || where != nil && where.usesTime
	switch {
	case name == "":
		b.err = errors.New("empty event name")
	case min < 0 || max < 0:
		b.err = fmt.Errorf("negative bound: min %d, max %d", min, max)
	case hasMax && max < min:
		b.err = fmt.Errorf("max %d is less than min %d", max, min)
	}
	return b
}

// rawResult returns the JSON object raw as a gjson Result: null if it is
// empty.
func rawResult(raw json.RawMessage) gjson.Result {
	if len(raw) == 0 {
		return gjson.Result{}
	}
	return gjson.Parse(unsafe.String(&raw[0], len(raw)))
}

// eventKey is the name an event is counted under in Profile.Counts.
func eventKey(e *store.Event) string {
	if e.Type == store.TypeTrack && e.Name != "" {
		return e.Name
	}
	return e.Type
}

func parseEventCount(l *loader, v *condJSON) Rule {
	a := l.args("eventCount", v, "name", "where", "min", "max", "within")
	a.require("name")
	name := a.str("name")
	hasMax := a.has("max")
	def := 1
	if hasMax {
		def = 0
	}
	min, max := a.int("min", def, 0), a.int("max", 0, 0)
	if hasMax && max < min && a.ok {
		a.bad("max", a.get("max"), "max %d is less than min %d", max, min)
	}
	var where *Condition
	if w := a.get("where"); w != nil {
		l.push("where")
		where = l.c.condition(w)
		l.pop()
	}
	return a.done(countEvents(name, where, min, max, hasMax, a.dur("within")))
}

// Since says what Recency looks at.
type Since struct {
	// Of is "seen" (the last event, the default), "firstSeen" (the first
	// event), "purchase" (the last order), or the name of an event ("page",
	// "signup"...): its last time in the ring of recent events.
	Of string
	// Exactly one of Within and OlderThan is positive: Within matches when
	// the time is at most Within ago, OlderThan when it is more than
	// OlderThan ago. A visitor who never did it matches neither.
	Within, OlderThan time.Duration
}

// Recency matches visitors by how long ago they were last seen, last
// bought, or last did something: "seen this week", "no purchase for 90
// days".
//
// For an event that was counted but has left the ring of recent events,
// the time is only known to be before the ring's oldest event: Within
// does not match, and OlderThan matches once that oldest event is older.
func Recency(s Since) Rule {
	of := s.Of
	if of == "" {
		of = "seen"
	}
	d, older := s.Within, false
	if s.OlderThan > 0 {
		d, older = s.OlderThan, true
	}
	b := profileRule("recency", func(in *Input, rec *condRecorder) (bool, error) {
		p := in.Profile
		var t time.Time
		before := false // t is a bound: the event was before it
		switch of {
		case "seen":
			t = p.LastSeen
		case "firstSeen":
			t = p.FirstSeen
		case "purchase":
			t = p.Purchases.Last
		default:
			for i := p.Recent.Len() - 1; i >= 0; i-- {
				if e := p.Recent.At(i); eventKey(e) == of && e.Time.After(t) {
					t = e.Time
				}
			}
			if t.IsZero() && p.Counts[of] > 0 {
				before = true
				t = p.FirstSeen
				if p.Recent.Len() > 0 {
					t = p.Recent.At(0).Time
				}
			}
		}
		ok := false
		if !t.IsZero() {
			edge := t.Add(d)
			if !edge.Before(in.Now) {
				in.ChangesAt(edge)
			}
			if older {
				ok = t.Before(in.Now.Add(-d))
			} else {
				ok = !before && !t.Before(in.Now.Add(-d))
			}
		}
		if rec != nil {
			actual := "null"
			if !t.IsZero() {
				actual = string(appendJSONTime(nil, t))
				if before {
					actual = "before " + actual
				}
			}
			op := "within"
			if older {
				op = "older than"
			}
			rec.fact("last "+of, op, actual, formatDuration(d), ok)
		}
		return ok, nil
	})
	b.deps.Time = true
	if (s.Within > 0) == (s.OlderThan > 0) {
		b.err = errors.New("want exactly one of within and olderThan, a positive duration")
	}
	return b
}

func parseRecency(l *loader, v *condJSON) Rule {
	a := l.args("recency", v, "of", "within", "olderThan")
	s := Since{Of: a.str("of"), Within: a.dur("within"), OlderThan: a.dur("olderThan")}
	if a.has("within") == a.has("olderThan") && a.ok {
		a.fail(`recency needs either "within" or "olderThan"`)
	}
	if a.has("of") && s.Of == "" && a.ok {
		a.bad("of", a.get("of"), `of is "seen", "firstSeen", "purchase" or an event's name, not ""`)
	}
	return a.done(Recency(s))
}

// Email engagement.

// EmailAction is what a visitor did with an email.
type EmailAction string

// Email actions, recorded as the track events "email_opened" and
// "email_clicked" with the campaign in the property "campaign". A click
// counts as an open.
const (
	EmailOpened  EmailAction = "opened"
	EmailClicked EmailAction = "clicked"
)

// Quantifier says how many of a list must pass: any, all or none.
type Quantifier string

// Quantifiers.
const (
	AnyOf  Quantifier = "any"
	AllOf  Quantifier = "all"
	NoneOf Quantifier = "none"
)

// Engagement selects email engagement for EmailEngagement.
type Engagement struct {
	// Action is EmailOpened (the default) or EmailClicked.
	Action EmailAction
	// Of is AnyOf (the default), AllOf or NoneOf.
	Of Quantifier
	// Last is how many of the latest campaigns count; 0 means 5.
	Last int
	// Campaigns, if set, are the campaigns sent, newest first. Otherwise
	// a visitor's campaigns are those of their email events
	// ("email_sent", "email_delivered", "email_opened", "email_clicked")
	// in the ring of recent events, newest first (by their latest email
	// event): record sends for "all" and "none" to be meaningful.
	Campaigns []string
}

// EmailEngagement matches visitors who opened or clicked any, all or none
// of the last campaigns: "engaged with the last 5 campaigns" is
//
//	EmailEngagement(Engagement{Of: AllOf, Last: 5})
//
// A visitor with no campaign matches none of them.
func EmailEngagement(g Engagement) Rule {
	if g.Action == "" {
		g.Action = EmailOpened
	}
	if g.Of == "" {
		g.Of = AnyOf
	}
	if g.Last == 0 {
		g.Last = 5
	}
	b := profileRule("email", func(in *Input, rec *condRecorder) (bool, error) {
		states := in.eval().derived.emails(in.Profile)
		var list []string
		size := 0
		if g.Campaigns != nil {
			list = g.Campaigns[:min(g.Last, len(g.Campaigns))]
			size = len(list)
		} else {
			size = min(g.Last, len(states))
		}
		var hits []string
		n := 0
		for i := range size {
			var st emailState
			if list != nil {
				if k := slices.IndexFunc(states, func(s emailState) bool { return s.name == list[i] }); k >= 0 {
					st = states[k]
				}
			} else {
				st = states[i]
			}
			if st.clicked || g.Action == EmailOpened && st.opened {
				n++
				if rec != nil {
					hits = append(hits, st.name)
				}
			}
		}
		if rec != nil && list == nil {
			for _, st := range states[:size] {
				list = append(list, st.name)
			}
		}
		ok := false
		if size > 0 {
			switch g.Of {
			case AnyOf:
				ok = n > 0
			case AllOf:
				ok = n == size
			case NoneOf:
				ok = n == 0
			}
		}
		if rec != nil {
			got, _ := json.Marshal(hits)
			want, _ := json.Marshal(list)
			rec.fact(fmt.Sprintf("campaigns %s (last %d)", g.Action, g.Last), string(g.Of)+" of", string(got), string(want), ok)
		}
		return ok, nil
	})
	switch {
	case g.Action != EmailOpened && g.Action != EmailClicked:
		b.err = fmt.Errorf("unknown action %q: want opened or clicked", g.Action)
	case g.Of != AnyOf && g.Of != AllOf && g.Of != NoneOf:
		b.err = fmt.Errorf("unknown quantifier %q: want any, all or none", g.Of)
	case g.Last < 0:
		b.err = fmt.Errorf("negative number of campaigns %d", g.Last)
	}
	return b
}

// emailState is what a visitor did with a campaign.
type emailState struct {
	name            string
	opened, clicked bool
}

// emails returns what the visitor did with each campaign of the recent
// events, newest first: in the order of their latest email event in the
// ring.
func (d *derived) emails(p *store.Profile) []emailState {
	if d.emailsRead {
		return d.email
	}
	d.emailsRead = true
	states := d.email[:0]
	for i := p.Recent.Len() - 1; i >= 0; i-- {
		e := p.Recent.At(i)
		if e.Type != store.TypeTrack || !strings.HasPrefix(e.Name, "email_") {
			continue
		}
		switch e.Name {
		case "email_sent", "email_delivered", "email_opened", "email_clicked":
		default:
			continue
		}
		c := rawResult(e.Props).Get("campaign")
		if c.Type != gjson.String && c.Type != gjson.Number || c.String() == "" {
			continue
		}
		name := c.String()
		k := len(states) - 1
		for k >= 0 && states[k].name != name {
			k--
		}
		if k < 0 {
			k = len(states)
			states = append(states, emailState{name: name})
		}
		switch e.Name {
		case "email_opened":
			states[k].opened = true
		case "email_clicked":
			states[k].opened, states[k].clicked = true, true
		}
	}
	d.email = states
	return states
}

func parseEmail(l *loader, v *condJSON) Rule {
	a := l.args("email", v, "action", "of", "last", "campaigns")
	g := Engagement{
		Action: EmailAction(a.oneOf("action", "opened", "opened", "clicked")),
		Of:     Quantifier(a.oneOf("of", "any", "any", "all", "none")),
		Last:   a.int("last", 5, 1),
	}
	if a.has("campaigns") {
		g.Campaigns = a.strs("campaigns")
	}
	return a.done(EmailEngagement(g))
}

// Interests.

// DefaultHalfLife is the half-life of interest scores when none is given.
const DefaultHalfLife = 14 * 24 * time.Hour

// A CategoryScore is a visitor's interest in a content category.
type CategoryScore struct {
	Category string
	Score    float64
}

// Interests returns the visitor's interest in each category they viewed,
// highest first (then by name): each page view of a category scores 1,
// halved every halfLife since it happened (DefaultHalfLife if halfLife is
// not positive). Views in the ring of recent events count at their time;
// older views (the profile counts more views of the category than the ring
// holds) count as if they happened when the ring's oldest event did, which
// overestimates them a little.
func Interests(p *store.Profile, now time.Time, halfLife time.Duration) []CategoryScore {
	if p == nil {
		return nil
	}
	if halfLife <= 0 {
		halfLife = DefaultHalfLife
	}
	// Categories are few: a list is faster than a map.
	type acc struct {
		cat   string
		score float64
		n     int
	}
	accs := make([]acc, 0, len(p.Categories)+1)
	find := func(accs []acc, c string, last int) ([]acc, int) {
		if last < len(accs) && accs[last].cat == c {
			return accs, last
		}
		for i := range accs {
			if accs[i].cat == c {
				return accs, i
			}
		}
		return append(accs, acc{cat: c}), len(accs)
	}
	nowSec, nowNsec := now.Unix(), now.Nanosecond()
	perSec := 1 / halfLife.Seconds()
	weight := func(t time.Time) float64 {
		age := float64(nowSec-t.Unix()) + float64(nowNsec-t.Nanosecond())*1e-9
		if age <= 0 {
			return 1
		}
		return exp2neg(age * perSec)
	}
	last := 0
	for i := range p.Recent.Len() {
		e := p.Recent.At(i)
		if e.Type != store.TypePage || e.Category == "" {
			continue
		}
		accs, last = find(accs, e.Category, last)
		accs[last].score += weight(e.Time)
		accs[last].n++
	}
	oldest := p.LastSeen
	if p.Recent.Len() > 0 {
		oldest = p.Recent.At(0).Time
	}
	w := weight(oldest)
	for c, n := range p.Categories {
		var k int
		accs, k = find(accs, c, 0)
		if n > accs[k].n {
			accs[k].score += float64(n-accs[k].n) * w
		}
	}
	out := make([]CategoryScore, len(accs))
	for i, a := range accs {
		out[i] = CategoryScore{a.cat, a.score}
	}
	slices.SortFunc(out, func(a, b CategoryScore) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.Category, b.Category)
	})
	return out
}

// exp2neg returns 2^-x for x >= 0, to a relative error below 1e-12, a few
// times faster than math.Exp2, which matters with hundreds of events.
func exp2neg(x float64) float64 {
	if x >= 1022 || math.IsNaN(x) {
		return 0
	}
	n := math.Ceil(x)
	f := n - x // 2^-x = 2^-n · 2^f, f in [0, 1)
	// 2^f = e^(f·ln 2), by its Taylor series to the 13th power.
	y := f * math.Ln2
	p := 1 + y*(1+y*(1.0/2+y*(1.0/6+y*(1.0/24+y*(1.0/120+y*(1.0/720+y*(1.0/5040+y*(1.0/40320+
		y*(1.0/362880+y*(1.0/3628800+y*(1.0/39916800+y*(1.0/479001600+y*(1.0/6227020800)))))))))))))
	return math.Float64frombits(math.Float64bits(p) - uint64(n)<<52)
}

// interests returns Interests for in, computed once per half-life.
func (d *derived) interests(in *Input, halfLife time.Duration) []CategoryScore {
	for _, c := range d.interest {
		if c.halfLife == halfLife {
			return c.scores
		}
	}
	s := Interests(in.Profile, in.Now, halfLife)
	d.interest = append(d.interest, interestCache{halfLife, s})
	return s
}

type interestCache struct {
	halfLife time.Duration
	scores   []CategoryScore
}

// Interest selects an interest for Interested.
type Interest struct {
	// Category is the content category. Required.
	Category string
	// Top, if positive, wants the category among the visitor's Top
	// categories by score (see Interests).
	Top int
	// MinScore, if positive, wants the category's score at least MinScore:
	// about the number of recent views, each counting less as it ages.
	MinScore float64
	// HalfLife is how fast views lose weight; 0 means DefaultHalfLife.
	HalfLife time.Duration
}

// Interested matches visitors interested in a category, by its rank among
// their interests, its score, or both: "interested in watercolours" is
//
//	Interested(Interest{Category: "watercolours", Top: 1})
func Interested(i Interest) Rule {
	h := i.HalfLife
	if h <= 0 {
		h = DefaultHalfLife
	}
	b := profileRule("interest", func(in *Input, rec *condRecorder) (bool, error) {
		scores := in.eval().derived.interests(in, h)
		rank, score := 0, 0.0
		for k, s := range scores {
			if s.Category == i.Category {
				rank, score = k+1, s.Score
				break
			}
		}
		ok := true
		what := ""
		if rec != nil {
			what = "interest[" + i.Category + "]"
		}
		if i.Top > 0 {
			top := rank > 0 && rank <= i.Top && score > 0
			ok = top
			if rec != nil {
				actual := "null"
				if rank > 0 {
					actual = fmt.Sprintf("rank %d", rank)
				}
				rec.fact(what, "top", actual, itoa(i.Top), top)
			}
		}
		if i.MinScore > 0 {
			above := score >= i.MinScore
			ok = ok && above
			if above {
				// Scores only decay: the score falls below MinScore at
				// now + h·log2(score/MinScore), give or take rounding.
				d := time.Duration(float64(h) * math.Log2(score/i.MinScore))
				in.ChangesAt(in.Now.Add(d - max(time.Millisecond, h/100_000_000)))
			}
			if rec != nil {
				rec.fact(what+" (half-life "+formatDuration(h)+")", ">=", formatFloat(score), formatFloat(i.MinScore), above)
			}
		}
		return ok, nil
	})
	b.deps.Time = i.MinScore > 0
	switch {
	case i.Category == "":
		b.err = errors.New("empty category")
	case i.Top <= 0 && i.MinScore <= 0:
		b.err = errors.New("want top, minScore or both")
	case i.Top < 0 || i.MinScore < 0 || math.IsNaN(i.MinScore):
		b.err = errors.New("negative top or minScore")
	}
	return b
}

func parseInterest(l *loader, v *condJSON) Rule {
	a := l.args("interest", v, "category", "top", "minScore", "halfLife")
	a.require("category")
	i := Interest{Category: a.str("category"), Top: a.int("top", 0, 1), MinScore: a.float("minScore", 0, 0), HalfLife: a.dur("halfLife")}
	if !a.has("top") && !a.has("minScore") && a.ok {
		a.fail(`interest needs "top", "minScore" or both`)
	}
	return a.done(Interested(i))
}
