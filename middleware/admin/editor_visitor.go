package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// visitorOfRequest is the optional ability of a Source to tell the
// visitor of a request from its cookie (*middleware.Personalizer has it),
// for testing a draft on "me": the dashboard user as a visitor of the
// site.
type visitorOfRequest interface {
	VisitorOf(r *http.Request) *middleware.Visitor
}

type testView struct {
	editorBase
	Who, By   string // the query: an id, and "visitor", "user" or "me"
	Segment   string
	Segments  []string // of the draft
	ProfileID string
	Asked     bool
	Err       string
	Draft     []explanationRow // the draft's verdicts
	Published []explanationRow // the published engine's, for comparison
}

// testVisitor shows, for a visitor, whether the draft's segments (or one
// of them) match, clause by clause, beside the published segments'
// verdicts. It reads only.
func (h *Handler) testVisitor(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return
	}
	v := testView{editorBase: h.editorBase(r, d, dr), Who: strings.TrimSpace(r.FormValue("who")), By: r.FormValue("by"), Segment: r.FormValue("segment")}
	parsed, err := d.Check(dr.Content)
	if err != nil {
		h.errorPage(w, r, http.StatusConflict, "The draft does not parse: "+err.Error())
		return
	}
	for _, s := range parsed.Segments.Segments() {
		v.Segments = append(v.Segments, s.Name)
	}
	if v.By == "" {
		v.By = "visitor"
	}
	if v.Who == "" && v.By != "me" {
		h.render(w, r, http.StatusOK, "editor_test", "Test on a visitor", "definitions", v)
		return
	}
	v.Asked = true
	status := http.StatusOK
	p, err := h.testProfile(r, v.By, v.Who)
	switch {
	case err != nil:
		v.Err, status = err.Error(), http.StatusNotFound
	default:
		v.ProfileID = p.ID
		now := h.cfg.Now()
		engine := &rules.Engine{}
		engine.Load(parsed.Segments)
		v.Draft = explanationRows(engine.Explain(&rules.Input{Profile: p, Now: now}), v.Segment)
		if e := h.p.Engine(); e != nil {
			v.Published = explanationRows(e.Explain(&rules.Input{Profile: p, Now: now}), v.Segment)
		}
	}
	h.render(w, r, status, "editor_test", "Test on a visitor", "definitions", v)
}

func explanationRows(xs []rules.Explanation, only string) []explanationRow {
	var out []explanationRow
	for _, x := range xs {
		if only != "" && x.Segment != only {
			continue
		}
		row := explanationRow{Explanation: x, Lines: clauseLines(x.Clauses)}
		if x.Err != nil {
			row.ErrMsg = x.Err.Error()
		}
		out = append(out, row)
	}
	return out
}

// testProfile finds the profile to test: a visitor id, a user id (the
// user's profile, or else a visitor who identified as the user, among the
// first SampleLimit profiles), or "me" (the visitor cookie the dashboard
// user's browser holds for the site).
func (h *Handler) testProfile(r *http.Request, by, who string) (*store.Profile, error) {
	ctx := r.Context()
	switch by {
	case "me":
		vr, ok := h.p.(visitorOfRequest)
		if !ok {
			return nil, errors.New(`this dashboard cannot read the site's visitor cookie: give a visitor id`)
		}
		vis := vr.VisitorOf(r)
		if vis == nil || vis.ID() == "" {
			return nil, errors.New(`your browser holds no visitor cookie of this site: visit the site first (in this browser, on the same host), then test again`)
		}
		return h.loadProfile(ctx, vis.ID())
	case "user":
		if id, err := store.UserProfileID(who); err == nil {
			if p, err := h.p.Profile(ctx, id); err == nil {
				return p, nil
			}
		}
		rg, ok := h.p.Store().(store.Ranger)
		if !ok {
			return nil, fmt.Errorf("no profile of user %q", who)
		}
		var found *store.Profile
		n := 0
		err := rg.Range(ctx, func(p *store.Profile) bool {
			n++
			if p.UserID == who && p.MergedInto == "" {
				found = p
				return false
			}
			return n < h.cfg.SampleLimit
		})
		if err != nil {
			return nil, err
		}
		if found == nil {
			return nil, fmt.Errorf("no profile of user %q among the %d profiles searched", who, n)
		}
		return h.loadProfile(ctx, found.ID)
	}
	return h.loadProfile(ctx, who)
}

func (h *Handler) loadProfile(ctx context.Context, id string) (*store.Profile, error) {
	p, err := h.p.Profile(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("no profile for visitor %q: it was never kept, or was deleted or expired", id)
	case errors.Is(err, store.ErrInvalidID):
		return nil, fmt.Errorf("%q is not a valid visitor id", id)
	}
	return p, err
}
