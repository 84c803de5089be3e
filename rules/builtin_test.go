package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

const day = 24 * time.Hour

// testNow is the time of evaluation of the built-in rules' tests.
var testNow = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// profileOf folds events, given IDs in order, into a new profile.
func profileOf(events ...store.Event) *store.Profile {
	p := store.New("v")
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = store.EventID("t", uint64(i+1))
		}
	}
	p.Apply(store.Limits{}, events...)
	return p
}

func page(path, category string, ago time.Duration) store.Event {
	return store.Event{Type: store.TypePage, Path: path, Category: category, Time: testNow.Add(-ago)}
}

func track(name string, ago time.Duration, props string) store.Event {
	e := store.Event{Type: store.TypeTrack, Name: name, Time: testNow.Add(-ago)}
	if props != "" {
		e.Props = json.RawMessage(props)
	}
	return e
}

func order(ago time.Duration, revenue float64) store.Event {
	return store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Time: testNow.Add(-ago), Revenue: revenue}
}

func orderAt(t time.Time, revenue float64) store.Event {
	return store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Time: t, Revenue: revenue}
}

func identify(traits string) store.Event {
	return store.Event{Type: store.TypeIdentify, Time: testNow.Add(-time.Minute), Traits: json.RawMessage(traits)}
}

// builtinCase is a rule, a visitor, and the expected classification: want
// membership, and the result valid for until after testNow (0: forever).
type builtinCase struct {
	name  string
	rule  Rule
	prof  *store.Profile
	facts Facts
	want  bool
	until time.Duration
}

func runBuiltinCases(t *testing.T, cases []builtinCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := NewEngine(Segment{Name: "s", Rule: tc.rule})
			if err != nil {
				t.Fatal(err)
			}
			in := &Input{Profile: tc.prof, Request: tc.facts, Now: testNow}
			r := e.classify(in)
			if got := len(r.segments) == 1; got != tc.want {
				t.Errorf("in segment = %v, want %v", got, tc.want)
			}
			var until time.Duration
			if !r.validUntil.IsZero() {
				until = r.validUntil.Sub(testNow)
			}
			if until != tc.until {
				t.Errorf("valid until now+%v, want now+%v", until, tc.until)
			}
			// Explain agrees with Match, and says something.
			x := e.Explain(&Input{Profile: tc.prof, Request: tc.facts, Now: testNow})
			if x[0].In != tc.want || x[0].Matched != tc.want || len(x[0].Clauses) == 0 {
				t.Errorf("Explain = %+v, want in %v", x[0], tc.want)
			}
			for _, c := range x[0].Clauses {
				if c.String() == "" || c.Rule == "" {
					t.Errorf("bad clause %+v", c)
				}
			}
			if d, ok := DependenciesOf(tc.rule); !ok || d.Time != (tc.until != 0) && !d.Time {
				t.Errorf("DependenciesOf = %+v, %v", d, ok)
			}
		})
	}
}

func TestBuiltinPages(t *testing.T) {
	t.Parallel()
	twice := profileOf(page("/pricing", "", 3*day), page("/docs/a", "", 2*day), page("/pricing", "", 1*day), page("/docs/a/b", "", time.Hour))
	old := profileOf(page("/pricing", "", 20*day), page("/pricing", "", 1*day))
	week := 7 * day
	runBuiltinCases(t, []builtinCase{
		{"twice this week", PageVisited(PageVisits{Path: "/pricing", Min: 2, Within: week}), twice, Facts{}, true, 4 * day},
		{"once this week", PageVisited(PageVisits{Path: "/pricing", Min: 2, Within: week}), old, Facts{}, false, 6 * day},
		{"twice ever", PageVisited(PageVisits{Path: "/pricing", Min: 2}), old, Facts{}, true, 0},
		{"exact does not match prefix", PageVisited(PageVisits{Path: "/docs"}), twice, Facts{}, false, 0},
		{"prefix", PageVisited(PageVisits{Path: "/docs/", Match: PathPrefix, Min: 2}), twice, Facts{}, true, 0},
		{"glob within a segment", PageVisited(PageVisits{Path: "/docs/*", Min: 2}), twice, Facts{}, false, 0},
		{"glob", PageVisited(PageVisits{Path: "/docs/*"}), twice, Facts{}, true, 0},
		{"glob windowed", PageVisited(PageVisits{Path: "/docs/*/*", Within: day}), twice, Facts{}, true, 23 * time.Hour},
		{"no profile", PageVisited(PageVisits{Path: "/pricing"}), nil, Facts{Path: "/pricing"}, false, 0},
		{"purchased", Purchased(1), profileOf(order(day, 10)), Facts{}, true, 0},
		{"purchased twice", Purchased(2), profileOf(order(day, 10)), Facts{}, false, 0},
		{"visits", Visits(1), twice, Facts{}, true, 0},
		{"category views", CategoryViews("hats", 2), profileOf(page("/h", "hats", day), page("/h", "hats", 0)), Facts{}, true, 0},
	})
}

func TestBuiltinEvents(t *testing.T) {
	t.Parallel()
	p := profileOf(
		track("add_to_cart", 40*day, `{"sku": "a", "value": 5}`),
		track("add_to_cart", 10*day, `{"sku": "b", "value": 50}`),
		track("add_to_cart", 2*day, `{"sku": "c", "value": 500}`),
		page("/", "", day),
	)
	big := MustConditionOf(t, `{"value": {"$gte": 50}}`)
	runBuiltinCases(t, []builtinCase{
		{"all time", EventCount("add_to_cart", 3), p, Facts{}, true, 0},
		{"count events", CountEvents(Events{Name: "add_to_cart", Min: 3}), p, Facts{}, true, 0},
		{"window", CountEvents(Events{Name: "add_to_cart", Min: 2, Within: 30 * day}), p, Facts{}, true, 20 * day},
		{"window, too few", CountEvents(Events{Name: "add_to_cart", Min: 3, Within: 30 * day}), p, Facts{}, false, 20 * day},
		{"max", CountEvents(Events{Name: "add_to_cart", Max: 1, Within: 5 * day}), p, Facts{}, true, 3 * day},
		{"max exceeded", CountEvents(Events{Name: "add_to_cart", Max: 2}), p, Facts{}, false, 0},
		{"where", CountEvents(Events{Name: "add_to_cart", Where: big, Min: 2}), p, Facts{}, true, 0},
		{"where, window", CountEvents(Events{Name: "add_to_cart", Where: big, Min: 2, Within: 5 * day}), p, Facts{}, false, 3 * day},
		{"page events", CountEvents(Events{Name: "page"}), p, Facts{}, true, 0},
		{"never", Not(EventCount("signup", 1)), p, Facts{}, true, 0},
	})
}

// MustConditionOf compiles a condition for a test.
func MustConditionOf(t testing.TB, src string) *Condition {
	t.Helper()
	c, err := CompileCondition([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBuiltinRecency(t *testing.T) {
	t.Parallel()
	p := profileOf(order(40*day, 20), page("/", "", 3*day), track("signup", 10*day, ""))
	ring := store.New("v")
	ring.Apply(store.Limits{Recent: 2}, track("signup", 50*day, ""), page("/", "", 20*day), page("/", "", 2*day))
	ring.Recent.At(0).ID = "x" // the signup has left the ring
	runBuiltinCases(t, []builtinCase{
		{"seen this week", Recency(Since{Within: 7 * day}), p, Facts{}, true, 4 * day},
		{"not seen for 2 days", Recency(Since{OlderThan: 2 * day}), p, Facts{}, true, 0},
		{"not seen for 5 days", Recency(Since{OlderThan: 5 * day}), p, Facts{}, false, 2 * day},
		{"bought within 30 days", Recency(Since{Of: "purchase", Within: 30 * day}), p, Facts{}, false, 0},
		{"lapsed buyer", Recency(Since{Of: "purchase", OlderThan: 30 * day}), p, Facts{}, true, 0},
		{"never bought", Recency(Since{Of: "purchase", OlderThan: 30 * day}), profileOf(page("/", "", day)), Facts{}, false, 0},
		{"first seen", Recency(Since{Of: "firstSeen", OlderThan: 30 * day}), p, Facts{}, true, 0},
		{"event", Recency(Since{Of: "signup", Within: 14 * day}), p, Facts{}, true, 4 * day},
		{"event left the ring: within", Recency(Since{Of: "signup", Within: 60 * day}), ring, Facts{}, false, 40 * day},
		{"event left the ring: older", Recency(Since{Of: "signup", OlderThan: 10 * day}), ring, Facts{}, true, 0},
		{"event left the ring: unknown", Recency(Since{Of: "signup", OlderThan: 30 * day}), ring, Facts{}, false, 10 * day},
		{"no profile", Recency(Since{Within: day}), nil, Facts{}, false, 0},
	})
}

func TestBuiltinLifecycleAndRFM(t *testing.T) {
	t.Parallel()
	var orders []store.Event
	for i := range 6 {
		orders = append(orders, order(time.Duration(100-i*10)*day, 100))
	}
	none := profileOf(page("/", "", day))
	one := profileOf(order(10*day, 30))
	two := profileOf(order(100*day, 30), order(10*day, 30))
	six := profileOf(orders...) // the last 50 days ago, 600 in revenue
	lc := Lifecycle{}
	within := Lifecycle{LoyalWithin: 60 * day}
	runBuiltinCases(t, []builtinCase{
		{"non-customer", LifecycleStage(NonCustomer, lc), none, Facts{}, true, 0},
		{"not one-time", LifecycleStage(OneTime, lc), none, Facts{}, false, 0},
		{"one-time", LifecycleStage(OneTime, lc), one, Facts{}, true, 0},
		{"repeat", LifecycleStage(Repeat, lc), two, Facts{}, true, 0},
		{"loyal", LifecycleStage(Loyal, lc), six, Facts{}, true, 0},
		{"loyal within 60 days", LifecycleStage(Loyal, within), six, Facts{}, true, 10 * day},
		{"not loyal within 30 days", LifecycleStage(Repeat, Lifecycle{LoyalWithin: 30 * day}), six, Facts{}, true, 0},
		{"loyal from 3", LifecycleStage(Loyal, Lifecycle{Repeat: 2, Loyal: 3}), six, Facts{}, true, 0},
		{"no profile", LifecycleStage(NonCustomer, lc), nil, Facts{}, false, 0},
		// Six orders, 600: F 4 (5 to 9 orders), M 4 (500 to 999); last
		// order 50 days ago: R 4 (31 to 90 days), changing at 90 days.
		{"rfm best", RFM(RFMScores{R: ScoreRange{Min: 4}, F: ScoreRange{Min: 4}, M: ScoreRange{Min: 4}}), six, Facts{}, true, 40 * day},
		{"rfm exact", RFM(RFMScores{R: ScoreRange{4, 4}, F: ScoreRange{4, 4}, M: ScoreRange{4, 4}}), six, Facts{}, true, 40 * day},
		{"rfm too high", RFM(RFMScores{F: ScoreRange{Min: 5}}), six, Facts{}, false, 40 * day},
		{"rfm cuts", RFM(RFMScores{Cuts: RFMCuts{Frequency: [4]float64{1, 2, 3, 6}}, F: ScoreRange{5, 5}}), six, Facts{}, true, 40 * day},
		{"rfm non-customer", RFM(RFMScores{R: ScoreRange{Max: 5}}), none, Facts{}, false, 0},
	})
	r, f, m := DefaultRFMCuts.Scores(one, testNow)
	if r != 5 || f != 1 || m != 1 {
		t.Errorf("Scores(one order of 30, 10 days ago) = %d %d %d, want 5 1 1", r, f, m)
	}
}

func TestBuiltinEmail(t *testing.T) {
	t.Parallel()
	var evs []store.Event
	for i := range 6 { // c0 oldest ... c5 newest: all sent, opened all but c1, clicked c5
		c := fmt.Sprintf(`{"campaign": "c%d"}`, i)
		ago := time.Duration(30-i*5) * day
		evs = append(evs, track("email_sent", ago, c))
		if i != 1 {
			evs = append(evs, track("email_opened", ago-time.Hour, c))
		}
	}
	evs = append(evs, track("email_clicked", 2*day, `{"campaign": "c5"}`))
	p := profileOf(evs...)
	runBuiltinCases(t, []builtinCase{
		{"opened all of the last 4", EmailEngagement(Engagement{Of: AllOf, Last: 4}), p, Facts{}, true, 0},
		{"opened all of the last 5", EmailEngagement(Engagement{Of: AllOf}), p, Facts{}, false, 0},
		{"opened any", EmailEngagement(Engagement{}), p, Facts{}, true, 0},
		{"clicked any of the last 2", EmailEngagement(Engagement{Action: EmailClicked, Last: 2}), p, Facts{}, true, 0},
		{"clicked none of the last 5 but one", EmailEngagement(Engagement{Action: EmailClicked, Of: NoneOf, Campaigns: []string{"c4", "c3"}}), p, Facts{}, true, 0},
		{"opened none of given", EmailEngagement(Engagement{Of: NoneOf, Campaigns: []string{"c1", "c9"}}), p, Facts{}, true, 0},
		{"no campaign", EmailEngagement(Engagement{Of: NoneOf}), profileOf(page("/", "", 0)), Facts{}, false, 0},
		{"a click is an open", EmailEngagement(Engagement{Of: AllOf, Campaigns: []string{"c9"}}),
			profileOf(track("email_clicked", day, `{"campaign": "c9"}`)), Facts{}, true, 0},
	})
}

func TestBuiltinInterest(t *testing.T) {
	t.Parallel()
	var evs []store.Event
	for i := range 6 {
		evs = append(evs, page("/w", "watercolours", time.Duration(i)*day))
	}
	for i := range 8 {
		evs = append(evs, page("/o", "oils", time.Duration(60+i)*day))
	}
	p := profileOf(evs...)
	scores := Interests(p, testNow, 14*day)
	if len(scores) != 2 || scores[0].Category != "watercolours" || scores[1].Category != "oils" {
		t.Fatalf("Interests = %v", scores)
	}
	// Six views in the last 5 days score a little under 6: just above 5
	// for 14·log2(5.2/5) days.
	runBuiltinCases(t, []builtinCase{
		{"top", Interested(Interest{Category: "watercolours", Top: 1}), p, Facts{}, true, 0},
		{"not top", Interested(Interest{Category: "oils", Top: 1}), p, Facts{}, false, 0},
		{"top 2", Interested(Interest{Category: "oils", Top: 2}), p, Facts{}, true, 0},
		{"unknown", Interested(Interest{Category: "pastels", Top: 5}), p, Facts{}, false, 0},
		{"score", Interested(Interest{Category: "oils", MinScore: 3}), p, Facts{}, false, 0},
	})
	// The score crosses MinScore when ValidUntil says.
	s := scores[0].Score
	e, _ := NewEngine(Segment{Name: "w", Rule: Interested(Interest{Category: "watercolours", MinScore: s / 2})})
	r := e.classify(&Input{Profile: p, Now: testNow})
	if len(r.segments) != 1 || r.validUntil.Sub(testNow)-14*day > time.Second || r.validUntil.Sub(testNow) > 14*day {
		t.Fatalf("score %v: ClassifyResult = %+v, want in until a half-life", s, r)
	}
	if len(e.Classify(&Input{Profile: p, Now: r.validUntil.Add(-time.Second)})) != 1 || len(e.Classify(&Input{Profile: p, Now: r.validUntil.Add(time.Second)})) != 0 {
		t.Errorf("membership does not change at ValidUntil %v", r.validUntil)
	}
}

func TestBuiltinTraitChannelSeasonal(t *testing.T) {
	t.Parallel()
	crm := profileOf(identify(`{"crm": {"stage": "opportunity"}, "twitter": {"followers": 1200}, "plan": "pro", "channel": "in-store"}`))
	web := profileOf(order(day, 5))
	store1 := profileOf(track("purchase", day, `{"channel": "in-store"}`), page("/", "", 0))
	var seasonal []store.Event
	for _, y := range []int{2023, 2024, 2025} {
		seasonal = append(seasonal, orderAt(time.Date(y, time.December, 10, 0, 0, 0, 0, time.UTC), 40))
		seasonal = append(seasonal, orderAt(time.Date(y, time.April, 2, 0, 0, 0, 0, time.UTC), 40))
	}
	seasonal = append(seasonal, orderAt(time.Date(2025, time.July, 2, 0, 0, 0, 0, time.UTC), 40))
	buyer := profileOf(seasonal...) // 7 orders, 6 in December and April
	// testNow is March 1st, noon: April starts in 30.5 days.
	toApril := 30*day + 12*time.Hour
	runBuiltinCases(t, []builtinCase{
		{"crm opportunity", Trait("crm.stage", "opportunity"), crm, Facts{}, true, 0},
		{"twitter follower", Trait("twitter.followers", map[string]any{"$gte": 1000}), crm, Facts{}, true, 0},
		{"trait exists", Trait("plan", nil), crm, Facts{}, true, 0},
		{"trait missing", Trait("plan", nil), web, Facts{}, false, 0},
		{"trait no profile", Trait("plan", map[string]any{"$exists": false}), nil, Facts{}, false, 0},
		{"channel from trait", InChannel(Channel{Is: "IN-STORE"}), crm, Facts{}, true, 0},
		{"channel from event", InChannel(Channel{Is: "in-store"}), store1, Facts{}, true, 0},
		{"channel default", InChannel(Channel{Is: "online"}), web, Facts{}, true, 0},
		{"channel untracked", InChannel(Channel{Is: "online"}), nil, Facts{}, true, 0},
		{"seasonal", SeasonalBuyer(Seasonal{Months: []time.Month{time.December, time.April}, Each: true}), buyer, Facts{}, true, 0},
		{"seasonal share", SeasonalBuyer(Seasonal{Months: []time.Month{time.December}, Share: 0.5}), buyer, Facts{}, false, 0},
		{"seasonal each", SeasonalBuyer(Seasonal{Months: []time.Month{time.December, time.May}, Share: 0.4, Each: true}), buyer, Facts{}, false, 0},
		{"seasonal too few", SeasonalBuyer(Seasonal{Months: []time.Month{time.January}}), profileOf(orderAt(time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC), 1)), Facts{}, false, 0},
		// April (three orders) starts in 30.5 days; the window of 30 days
		// opens at midnight.
		{"due in 30 days", DueToBuy(Due{Within: 30 * day}), buyer, Facts{}, false, 12 * time.Hour},
		{"due in 40 days", DueToBuy(Due{Within: 40 * day}), buyer, Facts{}, true, toApril},
		{"due: December only", DueToBuy(Due{Within: 40 * day, MinOrders: 4}), buyer, Facts{}, false, toApril},
	})
}

func TestBuiltinContext(t *testing.T) {
	t.Parallel()
	mobileNews := Facts{Source: "Newsletter", Medium: "email", Campaign: "spring", Device: "mobile", Country: "fr", Referrer: "www.google.com", Path: "/docs/x", New: true}
	runBuiltinCases(t, []builtinCase{
		{"utm", Contextual(Context{Source: []string{"newsletter"}, Medium: []string{"email"}}), nil, mobileNews, true, 0},
		{"campaign", Contextual(Context{Campaign: []string{"autumn", "spring"}}), nil, mobileNews, true, 0},
		{"any campaign", Contextual(Context{Campaign: []string{"*"}}), nil, Facts{}, false, 0},
		{"device", Contextual(Context{Device: []string{"desktop"}}), nil, mobileNews, false, 0},
		{"country", Contextual(Context{Country: []string{"FR", "BE"}}), nil, mobileNews, true, 0},
		{"referrer subdomain", Contextual(Context{Referrer: []string{"google.com"}}), nil, mobileNews, true, 0},
		{"referrer glob", Contextual(Context{Referrer: []string{"*.google.*"}}), nil, mobileNews, true, 0},
		{"referrer other", Contextual(Context{Referrer: []string{"oogle.com"}}), nil, mobileNews, false, 0},
		{"path", Contextual(Context{Path: []string{"/docs/*"}}), nil, mobileNews, true, 0},
		{"new", Contextual(Context{Visitor: "new"}), nil, mobileNews, true, 0},
		{"returning", Contextual(Context{Visitor: "returning"}), profileOf(page("/", "", 0)), Facts{}, true, 0},
		{"with a profile", And(Contextual(Context{Device: []string{"mobile"}}), Purchased(1)), profileOf(order(day, 1)), mobileNews, true, 0},
	})
	d, _ := DependenciesOf(Contextual(Context{Source: []string{"x"}, Visitor: "new"}))
	if d.Request != FieldSource|FieldNew || d.Time {
		t.Errorf("Dependencies = %+v", d)
	}
}

func TestBuiltinCombinators(t *testing.T) {
	t.Parallel()
	p := profileOf(order(day, 10), page("/pricing", "", day))
	fail := RuleFunc(func(*Input) (bool, error) { return false, fmt.Errorf("boom") })
	yes := RuleFunc(func(*Input) (bool, error) { return true, nil })
	runBuiltinCases(t, []builtinCase{
		{"and", And(Purchased(1), Visits(1)), p, Facts{}, true, 0},
		{"and empty", And(), p, Facts{}, true, 0},
		{"or", Or(Purchased(5), Visits(1)), p, Facts{}, true, 0},
		{"or none", Or(Purchased(5), Visits(5)), p, Facts{}, false, 0},
		{"not", Not(Purchased(5)), p, Facts{}, true, 0},
		{"not an error", Not(fail), p, Facts{}, false, 0},
		{"or past an error", Or(fail, Purchased(1)), p, Facts{}, true, 0},
		// A rule that does not say what it depends on is valid for now only.
		{"opaque rule", And(yes, Purchased(1)), p, Facts{}, true, 0},
		{"windowed inside", Or(Purchased(5), PageVisited(PageVisits{Path: "/pricing", Within: 2 * day})), p, Facts{}, true, day},
		{"condition", MustCondition(`{"purchases.count": 1, "pages./pricing": {"$gte": 1}}`), p, Facts{}, true, 0},
		{"condition window", MustCondition(`{"lastSeen": {"$within": "3d"}}`), p, Facts{}, true, 2 * day},
	})
}

func TestOpaqueRuleResult(t *testing.T) {
	t.Parallel()
	yes := RuleFunc(func(*Input) (bool, error) { return true, nil })
	e, _ := NewEngine(Segment{Name: "a", Rule: And(yes, Purchased(0))})
	in := &Input{Profile: profileOf(page("/", "", 0)), Now: testNow}
	r := e.classify(in)
	if !r.validUntil.Equal(testNow) || r.request != AllFields || (r.request == 0) {
		t.Errorf("ClassifyResult with an opaque rule = %+v, want valid until now, reading every fact", r)
	}
	if e.valid(r, in.Request, testNow) {
		t.Error("Valid for an opaque rule")
	}
}

func TestBuiltinProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{PageVisited(PageVisits{Path: "/a/["}), `bad glob pattern "/a/["`},
		{PageVisited(PageVisits{}), "empty path pattern"},
		{CountEvents(Events{}), "empty event name"},
		{CountEvents(Events{Name: "x", Min: 3, Max: 2}), "max 2 is less than min 3"},
		{Recency(Since{}), "exactly one of within and olderThan"},
		{Recency(Since{Within: 1, OlderThan: 1}), "exactly one of within and olderThan"},
		{LifecycleStage("vip", Lifecycle{}), `unknown stage "vip"`},
		{LifecycleStage(Loyal, Lifecycle{Repeat: 3, Loyal: 3}), "bad thresholds"},
		{RFM(RFMScores{Cuts: RFMCuts{Recency: [4]float64{5, 4, 3, 2}}}), "not ascending"},
		{RFM(RFMScores{R: ScoreRange{Min: 6}}), "bad score range"},
		{EmailEngagement(Engagement{Action: "read"}), `unknown action "read"`},
		{EmailEngagement(Engagement{Of: "most"}), `unknown quantifier "most"`},
		{Interested(Interest{Category: "x"}), "want top, minScore or both"},
		{Interested(Interest{Top: 1}), "empty category"},
		{Trait("plan", map[string]any{"$bogus": 1}), "unknown operator $bogus"},
		{Trait("", "x"), "empty path"},
		{Trait("x", func() {}), "unsupported type"},
		{Contextual(Context{}), "no fact to test"},
		{Contextual(Context{Visitor: "old"}), `unknown visitor "old"`},
		{Contextual(Context{Referrer: []string{"[x"}}), "bad referrer pattern"},
		{SeasonalBuyer(Seasonal{}), "no months"},
		{SeasonalBuyer(Seasonal{Months: []time.Month{13}}), "no month 13"},
		{DueToBuy(Due{}), "within must be a positive duration"},
		{InChannel(Channel{}), "empty channel"},
		{InSegment(""), "empty segment name"},
		{And(Purchased(1), nil), "rule 1 is nil"},
	} {
		_, err := NewEngine(Segment{Name: "s", Rule: tc.rule})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `segment 0 "s"`) {
			t.Errorf("NewEngine(%v) = %v, want an error with %q", tc.rule, err, tc.want)
		}
		if ok, err := tc.rule.Match(&Input{Profile: store.New("x"), Now: testNow}); ok || err == nil {
			if _, isCombo := tc.rule.(*combo); !isCombo {
				t.Errorf("%v: Match = %v, %v, want an error", tc.rule, ok, err)
			}
		}
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		7 * day:                    "7d",
		36 * time.Hour:             "1d12h",
		90 * time.Minute:           "1h30m",
		45 * time.Second:           "45s",
		day + time.Second:          "1d1s",
		2*time.Hour + time.Minute:  "2h1m",
		1500 * time.Millisecond:    "1.5s",
		30*day + 90*time.Minute:    "30d1h30m",
		time.Duration(0):           "0s",
		10*time.Minute + time.Hour: "1h10m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
