package admin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin/internal/chart"
	"github.com/tailorhq/tailor/middleware/webhook"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
)

var pageNames = []string{"overview", "segment", "visitor", "search", "experiments", "rules", "webhooks", "error"}

func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("tailor/admin: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// page is what the layout template gets.
type page struct {
	Title    string
	Nav      string // the section to highlight
	Prefix   string
	Insecure bool
	Now      time.Time
	User     user // who is signed in
	Body     any
}

// render writes the page, buffered so that a template error becomes a 500
// rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, body any) {
	var buf bytes.Buffer
	err := h.pages[name].ExecuteTemplate(&buf, "layout.html", page{
		Title: title, Nav: nav, Prefix: h.cfg.Prefix, Insecure: h.cfg.Insecure, Now: h.cfg.Now(), User: userOf(r), Body: body,
	})
	if err != nil {
		h.cfg.Logger.Error("tailor/admin: rendering a page failed", "page", name, "err", err)
		http.Error(w, "500 Internal Server Error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", http.StatusText(status), "", struct {
		Status int
		Text   string
		Msg    string
	}{status, http.StatusText(status), msg})
}

func (h *Handler) funcs() template.FuncMap {
	loc := h.cfg.Location
	return template.FuncMap{
		// path joins escaped parts to the prefix: {{path "segments" .Name}}.
		"path": func(parts ...string) string {
			esc := make([]string, len(parts))
			for i, p := range parts {
				esc[i] = url.PathEscape(p)
			}
			return h.cfg.Prefix + strings.Join(esc, "/")
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(loc).Format("2006-01-02 15:04:05 MST")
		},
		"clock": func(t time.Time) string { return t.In(loc).Format("15:04:05") },
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			d := h.cfg.Now().Sub(t)
			if d < 0 {
				return "in " + roughDuration(-d)
			}
			return roughDuration(d) + " ago"
		},
		"dur":   roughDuration,
		"num":   formatInt,
		"pct":   func(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" },
		"fixed": func(v float64, d int) string { return strconv.FormatFloat(v, 'f', d, 64) },
		"svg":   func(s string) template.HTML { return template.HTML(s) }, // from package chart, which escapes every text
		"depth": func(d int) string { return "d" + strconv.Itoa(min(d, 8)) },
		"kvs":   func(title string, rows []kv) kvTable { return kvTable{title, rows} },
		"weekday": func(d int) string {
			if d < 0 || d > 6 {
				return "unknown"
			}
			return time.Weekday(d).String()
		},
	}
}

// roughDuration formats d with one or two units.
func roughDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, (d%time.Minute)/time.Second)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	}
	return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " days"
}

// formatInt writes an integer with thin spaces between thousands.
func formatInt(v any) string {
	var s string
	switch v := v.(type) {
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case uint64:
		s = strconv.FormatUint(v, 10)
	case float64:
		s = strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	default:
		return fmt.Sprint(v)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ---- overview ----

type segmentRow struct {
	Name, Description, Group string
	Priority                 int
	Size                     int
	Share                    float64
}

type overviewView struct {
	Stats           middleware.Stats
	HitRatio        float64
	HasHits         bool
	Last            sample
	HasSample       bool
	EventsPerMinute float64
	HasRate         bool
	SizesChart      string
	EventsChart     string
	Segments        []segmentRow
	NoEngine        bool
	Interval        time.Duration
	Limit           int
	Samples         int
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	v := overviewView{Stats: h.p.Stats(), Interval: h.cfg.SampleInterval, Limit: h.cfg.SampleLimit, NoEngine: h.p.Engine() == nil}
	if n := v.Stats.CacheHits + v.Stats.CacheMisses; n > 0 {
		v.HitRatio, v.HasHits = float64(v.Stats.CacheHits)/float64(n), true
	}
	samples := h.hist.all()
	v.Samples = len(samples)
	v.Last, v.HasSample = h.current(r.Context())
	times := make([]time.Time, len(samples))
	rate := chart.Series{Name: "events per minute", Values: make([]float64, len(samples))}
	for i, s := range samples {
		times[i] = s.Time
		rate.Values[i] = math.NaN()
		if i > 0 {
			if m := s.Time.Sub(samples[i-1].Time).Minutes(); m > 0 && s.Events >= samples[i-1].Events {
				rate.Values[i] = float64(s.Events-samples[i-1].Events) / m
			}
		}
	}
	if n := len(rate.Values); n > 0 && !math.IsNaN(rate.Values[n-1]) {
		v.EventsPerMinute, v.HasRate = rate.Values[n-1], true
	}
	segs := h.p.Engine().Segments()
	names := make([]string, 0, len(segs))
	for _, s := range segs {
		names = append(names, s.Name)
		row := segmentRow{Name: s.Name, Description: s.Description, Group: s.Group, Priority: s.Priority}
		if v.HasSample && v.Last.Profiles > 0 {
			row.Size = v.Last.Sizes[s.Name]
			row.Share = float64(row.Size) / float64(v.Last.Profiles)
		}
		v.Segments = append(v.Segments, row)
	}
	sized := withCurrent(samples, v.Last, v.HasSample && v.Last.Counted)
	v.SizesChart = (&chart.Line{
		Title: "Segment sizes over time", Times: timesOf(sized), Series: sizeSeries(sized, names),
		YLabel: "visitors in the segment", Integer: true, Location: h.cfg.Location,
		Width: chartWidth, Height: 300, Empty: h.noSizesReason(v.NoEngine),
	}).SVG()
	v.EventsChart = (&chart.Line{
		Title: "Events recorded per minute", Times: times, Series: []chart.Series{rate},
		YLabel: "events per minute (this instance)", Location: h.cfg.Location, Width: chartWidth, Height: 220,
		Empty: "needs two measurements",
	}).SVG()
	h.render(w, r, http.StatusOK, "overview", "Overview", "overview", v)
}

// timesOf returns the samples' times.
func timesOf(samples []sample) []time.Time {
	times := make([]time.Time, len(samples))
	for i, s := range samples {
		times[i] = s.Time
	}
	return times
}

func (h *Handler) noSizesReason(noEngine bool) string {
	switch {
	case noEngine:
		return "no segment engine"
	case !h.canRange():
		return "the store cannot list its profiles"
	}
	return "no data yet"
}

func (h *Handler) canRange() bool {
	_, ok := h.p.Store().(store.Ranger)
	return ok
}

// sizeSeries returns a series per segment of names, then per segment that
// only older samples know (removed since), with NaN where a sample has no
// sizes.
func sizeSeries(samples []sample, names []string) []chart.Series {
	known := slices.Clone(names)
	for _, s := range samples {
		for name := range s.Sizes {
			if !slices.Contains(known, name) {
				known = append(known, name)
			}
		}
	}
	slices.Sort(known[len(names):])
	out := make([]chart.Series, len(known))
	for i, name := range known {
		out[i].Name = name
		out[i].Values = make([]float64, len(samples))
		for k, s := range samples {
			if !s.Ranged || s.Err != "" {
				out[i].Values[k] = math.NaN()
				continue
			}
			out[i].Values[k] = float64(s.Sizes[name])
		}
	}
	return out
}

// ---- segment ----

// A defLine is one line of a rule's definition or explanation.
type defLine struct {
	Depth    int
	Text     string
	Actual   string
	Result   bool
	Combined bool // and, or, not: no value of its own
}

func clauseLines(cs []rules.Clause) []defLine {
	out := make([]defLine, len(cs))
	for i, c := range cs {
		l := defLine{Depth: c.Depth, Result: c.Result, Actual: c.Actual}
		switch {
		case c.Path == "" && c.Actual == "":
			l.Text, l.Combined = strings.TrimSpace(c.Op+" "+c.Expected), true
		case c.Path == "":
			l.Text = strings.TrimSpace(c.Op + " " + c.Expected)
		default:
			l.Text = c.Path + " " + c.Op + " " + c.Expected
		}
		if l.Text == "" {
			l.Text = c.Rule
		}
		out[i] = l
	}
	return out
}

// definitions returns each segment's rule as the clauses it tests.
func (h *Handler) definitions() map[string][]defLine {
	out := map[string][]defLine{}
	for _, x := range h.p.Engine().Explain(&rules.Input{Profile: store.New("definition"), Now: h.cfg.Now()}) {
		out[x.Segment] = clauseLines(x.Clauses)
	}
	return out
}

type memberRow struct {
	ID, UserID string
	LastSeen   time.Time
	Visits     int
	Orders     int
	PreviewURL string // a preview link of the site as this member, if the source makes them
}

type segmentView struct {
	PreviewURL string // a preview link of the site as a member of the segment
	PreviewAs  string // the member PreviewURL shows the site as, "" for an empty profile
	Seg        rules.Segment
	Definition []defLine
	Last       sample
	HasSample  bool
	Size       int
	Share      float64
	Chart      string
	Members    []memberRow
	Scanned    int
	Complete   bool
	MembersErr string
	NoRanger   bool
	Counted    bool // sizes and members are as the store counts them
	Limit      int
	Shown      int
}

const membersShown = 25

// chartWidth is the width charts are drawn at; the stylesheet scales them
// to the page.
const chartWidth = 1200

func (h *Handler) segment(w http.ResponseWriter, r *http.Request) {
	seg, ok := h.findSegment(r.PathValue("name"))
	if !ok {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("There is no segment named %q in the engine's current set.", r.PathValue("name")))
		return
	}
	v := segmentView{Seg: seg, Definition: h.definitions()[seg.Name], Limit: h.cfg.SampleLimit, Shown: membersShown}
	v.Last, v.HasSample = h.current(r.Context())
	if v.HasSample {
		v.Size = v.Last.Sizes[seg.Name]
		if v.Last.Profiles > 0 {
			v.Share = float64(v.Size) / float64(v.Last.Profiles)
		}
	}
	samples := withCurrent(h.hist.all(), v.Last, v.HasSample && v.Last.Counted)
	v.Chart = (&chart.Line{
		Title: "Size of " + seg.Name + " over time", Times: timesOf(samples), Series: sizeSeries(samples, []string{seg.Name})[:1],
		YLabel: "visitors", Integer: true, Location: h.cfg.Location, Width: chartWidth, Height: 220, Empty: h.noSizesReason(false),
	}).SVG()

	v.Counted = v.HasSample && v.Last.Counted
	rg, ok := h.p.Store().(store.Ranger)
	if !ok {
		v.NoRanger = true
	} else {
		now := h.cfg.Now()
		engine := h.p.Engine()
		v.Complete = true
		err := rg.Range(r.Context(), func(p *store.Profile) bool {
			if p.MergedInto != "" {
				return true
			}
			if v.Scanned >= h.cfg.SampleLimit {
				v.Complete = false
				return false
			}
			v.Scanned++
			// With the store's counts, a member is a profile in the
			// segment it was last classified into, as the count has it;
			// otherwise the profile is classified now, as measure does.
			var in bool
			if v.Counted {
				in = slices.Contains(p.Segments, seg.Name)
			} else {
				in = slices.Contains(engine.Classify(&rules.Input{Profile: p, Now: now}), seg.Name)
			}
			if in {
				v.Members = append(v.Members, memberRow{ID: p.ID, UserID: p.UserID, LastSeen: p.LastSeen, Visits: p.Visits, Orders: p.Purchases.Count})
				if len(v.Members) >= membersShown {
					v.Complete = false
					return false
				}
			}
			return true
		})
		if err != nil {
			v.MembersErr = err.Error()
		}
	}
	h.previewLinks(&v)
	h.render(w, r, http.StatusOK, "segment", "Segment "+seg.Name, "overview", v)
}

// previewTTL is how long the dashboard's preview links work.
const previewTTL = time.Hour

// previewerAs is the ability of a Source to make preview links that show
// the site as a stored profile (a representative visitor), as a
// *middleware.Personalizer does (see its PreviewLinkAs).
type previewerAs interface {
	PreviewLinkAs(target, profileID string, segments []string, variants map[string]string, ttl time.Duration) (string, error)
}

// previewLinks sets the segment page's preview links: one per member
// shown, and the segment's, as its first member (or with an empty profile
// when none was found, or the source cannot show a profile).
func (h *Handler) previewLinks(v *segmentView) {
	segs := []string{v.Seg.Name}
	pa, ok := h.p.(previewerAs)
	if ok {
		for i := range v.Members {
			m := &v.Members[i]
			if link, err := pa.PreviewLinkAs("/", m.ID, segs, nil, previewTTL); err == nil {
				m.PreviewURL = link
			}
		}
		if len(v.Members) > 0 && v.Members[0].PreviewURL != "" {
			v.PreviewURL, v.PreviewAs = v.Members[0].PreviewURL, v.Members[0].ID
			return
		}
	}
	if link, err := h.p.PreviewLink("/", segs, nil, previewTTL); err == nil {
		v.PreviewURL = link
	}
}

func (h *Handler) findSegment(name string) (rules.Segment, bool) {
	for _, s := range h.p.Engine().Segments() {
		if s.Name == name {
			return s, true
		}
	}
	return rules.Segment{}, false
}

// ---- visitors ----

type searchView struct {
	Query, By string
	Results   []memberRow
	Searched  bool
	Scanned   int
	Complete  bool
	NoRanger  bool
	Err       string
	Limit     int
	Recent    []memberRow // the visitors seen last, when there is no query
}

const recentVisitors = 20

// recentVisitors returns the visitors seen last among the first
// SampleLimit profiles of the store.
func (h *Handler) recentVisitors(ctx context.Context) (rows []memberRow, scanned int, complete bool, errMsg string, noRanger bool) {
	rg, ok := h.p.Store().(store.Ranger)
	if !ok {
		return nil, 0, false, "", true
	}
	byLastSeen := func(a, b memberRow) int { return b.LastSeen.Compare(a.LastSeen) }
	complete = true
	err := rg.Range(ctx, func(p *store.Profile) bool {
		if p.MergedInto != "" {
			return true
		}
		if scanned >= h.cfg.SampleLimit {
			complete = false
			return false
		}
		scanned++
		rows = append(rows, memberRow{ID: p.ID, UserID: p.UserID, LastSeen: p.LastSeen, Visits: p.Visits, Orders: p.Purchases.Count})
		if len(rows) >= 4*recentVisitors {
			slices.SortFunc(rows, byLastSeen)
			rows = rows[:recentVisitors]
		}
		return true
	})
	if err != nil {
		errMsg = err.Error()
	}
	slices.SortFunc(rows, byLastSeen)
	if len(rows) > recentVisitors {
		rows = rows[:recentVisitors]
	}
	return rows, scanned, complete, errMsg, false
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.FormValue("q"))
	by := r.FormValue("by")
	if by != "user" {
		by = "visitor"
	}
	v := searchView{Query: q, By: by, Limit: h.cfg.SampleLimit}
	if q == "" {
		v.Recent, v.Scanned, v.Complete, v.Err, v.NoRanger = h.recentVisitors(r.Context())
		h.render(w, r, http.StatusOK, "search", "Find a visitor", "visitors", v)
		return
	}
	if by == "visitor" {
		http.Redirect(w, r, h.cfg.Prefix+"visitors/"+url.PathEscape(q), http.StatusSeeOther)
		return
	}
	v.Searched = true
	// The user's own profile, into which the profiles of the visitors who
	// identified as the user are merged, is the one to show.
	if id, err := store.UserProfileID(q); err == nil {
		if _, err := h.p.Profile(r.Context(), id); err == nil {
			http.Redirect(w, r, h.cfg.Prefix+"visitors/"+url.PathEscape(id), http.StatusSeeOther)
			return
		} else if !errors.Is(err, store.ErrNotFound) {
			v.Err = err.Error()
		}
	}
	// Otherwise, visitors who identified but were not merged: search the
	// store.
	if rg, ok := h.p.Store().(store.Ranger); ok {
		v.Complete = true
		err := rg.Range(r.Context(), func(p *store.Profile) bool {
			if v.Scanned >= h.cfg.SampleLimit {
				v.Complete = false
				return false
			}
			v.Scanned++
			if p.UserID == q && p.MergedInto == "" {
				v.Results = append(v.Results, memberRow{ID: p.ID, UserID: p.UserID, LastSeen: p.LastSeen, Visits: p.Visits, Orders: p.Purchases.Count})
			}
			return true
		})
		if err != nil {
			v.Err = err.Error()
		}
	} else {
		v.NoRanger = true
	}
	if len(v.Results) == 1 && v.Complete && v.Err == "" {
		http.Redirect(w, r, h.cfg.Prefix+"visitors/"+url.PathEscape(v.Results[0].ID), http.StatusSeeOther)
		return
	}
	slices.SortFunc(v.Results, func(a, b memberRow) int { return b.LastSeen.Compare(a.LastSeen) })
	h.render(w, r, http.StatusOK, "search", "Find a visitor", "visitors", v)
}

type kvTable struct {
	Title string
	Rows  []kv
}

type kv struct {
	Key   string
	Count int
}

func topOf(m map[string]int, n int) []kv {
	out := make([]kv, 0, len(m))
	for k, c := range m {
		out = append(out, kv{k, c})
	}
	slices.SortFunc(out, func(a, b kv) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

type eventRow struct {
	Time                 time.Time
	Type, Name           string
	Path, Category, Item string
	Detail               string
}

type explanationRow struct {
	rules.Explanation
	Lines  []defLine
	ErrMsg string
}

type visitorView struct {
	ID           string
	User         bool // a user's profile, not a visitor's
	P            *store.Profile
	Missing      bool
	Err          string
	Traits       string
	Pred         assoc.Predictions
	Recent       []eventRow
	RecentTotal  int
	Explanations []explanationRow
	In           []string
	Counts       []kv
	Pages        []kv
	Categories   []kv
	Views        []kv
	Bought       []kv
	Now          time.Time
	NoEngine     bool
}

const recentShown = 100

func (h *Handler) visitor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v := visitorView{ID: id, User: strings.HasPrefix(id, store.UserPrefix), Now: h.cfg.Now(), NoEngine: h.p.Engine() == nil}
	title := "Visitor " + id
	if v.User {
		title = "User " + strings.TrimPrefix(id, store.UserPrefix)
	}
	p, err := h.p.Profile(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		v.Missing = true
		h.render(w, r, http.StatusNotFound, "visitor", title, "visitors", v)
		return
	case errors.Is(err, store.ErrInvalidID):
		h.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("%q is not a valid visitor id.", id))
		return
	case err != nil:
		v.Err = err.Error()
		h.render(w, r, http.StatusServiceUnavailable, "visitor", title, "visitors", v)
		return
	}
	v.P = p
	if len(p.Traits) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, p.Traits, "", "  ") == nil {
			v.Traits = buf.String()
		} else {
			v.Traits = string(p.Traits)
		}
	}
	v.Pred = assoc.Predict(p, v.Now)
	evs := p.Recent.Events()
	v.RecentTotal = len(evs)
	for i := len(evs) - 1; i >= 0 && len(v.Recent) < recentShown; i-- {
		v.Recent = append(v.Recent, eventRowOf(&evs[i]))
	}
	for _, x := range h.p.Engine().Explain(&rules.Input{Profile: p, Now: v.Now}) {
		row := explanationRow{Explanation: x, Lines: clauseLines(x.Clauses)}
		if x.Err != nil {
			row.ErrMsg = x.Err.Error()
		}
		if x.In {
			v.In = append(v.In, x.Segment)
		}
		v.Explanations = append(v.Explanations, row)
	}
	v.Counts = topOf(p.Counts, 20)
	v.Pages = topOf(p.Pages, 20)
	v.Categories = topOf(p.Categories, 20)
	v.Views = topOf(p.Views, 20)
	v.Bought = topOf(p.Purchases.Items, 20)
	h.render(w, r, http.StatusOK, "visitor", title, "visitors", v)
}

func eventRowOf(e *store.Event) eventRow {
	row := eventRow{Time: e.Time, Type: e.Type, Name: e.Name, Path: e.Path, Category: e.Category, Item: e.Item}
	var d []string
	add := func(k, v string) {
		if v != "" {
			d = append(d, k+": "+v)
		}
	}
	if len(e.Items) > 0 {
		var items []string
		for _, it := range e.Items {
			items = append(items, fmt.Sprintf("%s×%d", it.ID, it.Qty()))
		}
		add("items", strings.Join(items, ", "))
	}
	if e.Revenue != 0 {
		add("revenue", strconv.FormatFloat(e.Revenue, 'f', 2, 64))
	}
	add("user", e.UserID)
	add("referrer", e.Referrer)
	add("utm", strings.Trim(strings.Join([]string{e.Source, e.Medium, e.Campaign}, " / "), " /"))
	add("device", e.Device)
	add("props", shorten(string(e.Props), 200))
	add("traits", shorten(string(e.Traits), 200))
	if e.NewVisit {
		d = append(d, "new visit")
	}
	row.Detail = strings.Join(d, "; ")
	return row
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ---- experiments ----

type variantRow struct {
	Key    string
	Weight float64
	Share  float64
}

type experimentView struct {
	Key, Segment string
	Note         string
	Coverage     float64
	Holdout      float64
	Goals        []string
	Variants     []variantRow
	Rows         []resultRow
	HasOther     bool // a row of OtherSegment
	Chart        string
	Problems     []string
}

// otherSegment is the results segment of the visitors of an experiment with
// a breakdown who are in none of its segments (slots.OtherSegment).
const otherSegment = "$other"

// A resultRow is a result, with what the page needs to say about it.
type resultRow struct {
	experiment.Row
	// NoData is set when the variant, or the control it is compared
	// with, has no visitors yet: P(beats control) then means nothing.
	NoData bool
	Other  bool // the segment is otherSegment
}

type experimentsView struct {
	NoSource    bool
	Err         string
	File        *fileView
	Experiments []experimentView
}

// fileView is a FileSource's status, its error as text.
type fileView struct {
	rules.Status
	ErrText string
}

func (h *Handler) experiments(w http.ResponseWriter, r *http.Request) {
	var v experimentsView
	if h.cfg.Experiments == nil {
		v.NoSource = true
		h.render(w, r, http.StatusOK, "experiments", "Experiments", "experiments", v)
		return
	}
	if fs, ok := h.cfg.Experiments.(FileSource); ok {
		v.File = &fileView{Status: fs.FileStatus()}
		if v.File.Err != nil {
			v.File.ErrText = v.File.Err.Error()
		}
	}
	list, err := h.cfg.Experiments.ExperimentResults(r.Context())
	if err != nil {
		v.Err = err.Error()
	}
	for _, x := range list {
		if x.Experiment == nil {
			continue
		}
		v.Experiments = append(v.Experiments, experimentViewOf(x))
	}
	h.render(w, r, http.StatusOK, "experiments", "Experiments", "experiments", v)
}

func experimentViewOf(x experiment.Report) experimentView {
	e := x.Experiment
	v := experimentView{Key: e.Key, Segment: e.Segment, Note: x.Note, Coverage: e.Coverage, Holdout: e.Holdout, Goals: e.Goals}
	if v.Coverage == 0 {
		v.Coverage = 1
	}
	total := 0.0
	for _, vr := range e.Variants {
		if vr.Weight > 0 {
			total += vr.Weight
		}
	}
	for _, vr := range e.Variants {
		row := variantRow{Key: vr.Key, Weight: vr.Weight}
		if total > 0 && vr.Weight > 0 {
			row.Share = vr.Weight / total
		}
		v.Variants = append(v.Variants, row)
	}
	if err := e.Validate(); err != nil {
		var ves experiment.ValidationErrors
		if errors.As(err, &ves) {
			for _, ve := range ves {
				v.Problems = append(v.Problems, ve.Error())
			}
		} else {
			v.Problems = append(v.Problems, err.Error())
		}
	}
	rows := experiment.Results(e, x.Counts)
	controlVisitors := map[string]int{}
	for _, row := range rows {
		if row.Control {
			controlVisitors[row.Segment] = row.Visitors
		}
	}
	for _, row := range rows {
		rr := resultRow{Row: row, Other: row.Segment == otherSegment}
		rr.NoData = !row.Control && (row.Visitors == 0 || controlVisitors[row.Segment] == 0)
		v.HasOther = v.HasOther || rr.Other
		v.Rows = append(v.Rows, rr)
	}

	// The chart: a group per segment, a bar per variant.
	c := chart.Bars{Title: e.Key + ": conversion rate by segment and variant", Percent: true, YLabel: "conversion rate, with 95% interval",
		Width: chartWidth, Height: 280}
	for _, vr := range e.Variants {
		c.Keys = append(c.Keys, vr.Key)
	}
	var group *chart.Group
	for _, row := range v.Rows {
		label := row.Segment
		switch label {
		case "":
			label = "all visitors"
		case otherSegment:
			label = otherSegment + " (in none of the segments)"
		}
		if group == nil || group.Label != label {
			c.Groups = append(c.Groups, chart.Group{Label: label})
			group = &c.Groups[len(c.Groups)-1]
		}
		if !slices.Contains(c.Keys, row.Variant) {
			c.Keys = append(c.Keys, row.Variant)
		}
		note := fmt.Sprintf("%d of %d visitors", row.Conversions, row.Visitors)
		switch {
		case row.Control || row.Variant == experiment.HoldoutVariant:
		case row.NoData:
			note += ", P(beats control) — (no data yet)"
		default:
			note += fmt.Sprintf(", P(beats control) %.1f%%", row.ProbBeatsControl*100)
		}
		group.Bars = append(group.Bars, chart.Bar{Key: row.Variant, Value: row.Rate, Lo: row.Lo, Hi: row.Hi, Interval: row.Visitors > 0, Note: note})
	}
	v.Chart = c.SVG()
	return v
}

// ---- rules ----

type ruleRow struct {
	Seg        rules.Segment
	Definition []defLine
	Size       int
	HasSize    bool
}

type rulesView struct {
	NoEngine      bool
	Status        rules.Status
	StatusErr     string
	Errors        uint64 // rule evaluations that failed
	Segments      []ruleRow
	File          string // the text of the loaded set
	FileTruncated bool
	Plugins       []string // the plugins the set uses
	Registered    []string // the plugins it could use
	Sampled       bool
	Complete      bool
	Profiles      int
	Counted       bool      // sizes are the store's exact counts
	Read          time.Time // when the sizes were read
}

const maxFileShown = 256 << 10

func (h *Handler) rules(w http.ResponseWriter, r *http.Request) {
	engine := h.p.Engine()
	set := engine.Set()
	v := rulesView{NoEngine: engine == nil, Status: engine.Status(), Errors: engine.Errors(),
		Plugins: set.Plugins(), Registered: set.RegisteredPlugins()}
	if v.Status.Err != nil {
		v.StatusErr = v.Status.Err.Error()
	}
	last, ok := h.current(r.Context())
	v.Sampled = ok && last.Ranged && last.Err == ""
	v.Complete, v.Profiles, v.Counted, v.Read = last.Complete, last.Profiles, last.Counted, last.Time
	defs := h.definitions()
	for _, s := range engine.Segments() {
		row := ruleRow{Seg: s, Definition: defs[s.Name]}
		if v.Sampled {
			row.Size, row.HasSize = last.Sizes[s.Name], true
		}
		v.Segments = append(v.Segments, row)
	}
	// The text the set was parsed from is what runs, whether it was read
	// from a file or built into the program (then Status.Source only
	// names it, and no such file need exist).
	if b := set.Text(); b != nil {
		if len(b) > maxFileShown {
			b, v.FileTruncated = b[:maxFileShown], true
		}
		v.File = string(b)
	}
	h.render(w, r, http.StatusOK, "rules", "Rules", "rules", v)
}

// ---- webhooks ----

type webhooksView struct {
	None   bool
	Target string
	Stats  webhook.Stats
	Log    []webhook.Delivery
}

func (h *Handler) webhooks(w http.ResponseWriter, r *http.Request) {
	v := webhooksView{None: h.cfg.Webhooks == nil}
	if d := h.cfg.Webhooks; d != nil {
		v.Target, v.Stats, v.Log = d.Target(), d.Stats(), d.Log()
	}
	h.render(w, r, http.StatusOK, "webhooks", "Webhooks", "webhooks", v)
}
