package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tailorhq/tailor/middleware/admin/internal/backtest"
	"github.com/tailorhq/tailor/middleware/admin/internal/chart"
	"github.com/tailorhq/tailor/store"
)

// A backtest runs a draft segment against the stored profiles, as a
// leased, throttled pass in the background (package
// middleware/admin/internal/backtest, whose Runner New makes when the
// store can scan its profiles). The editor starts it, shows its progress
// and result, and cancels it.

// backtester is what the editor needs of a *backtest.Runner.
type backtester interface {
	Start(ctx context.Context, req backtest.Request) (string, error)
	Progress(ctx context.Context, id string) (backtest.Progress, error)
	Last(ctx context.Context) (backtest.Progress, error)
	Cancel(ctx context.Context, id string) error
}

var _ backtester = (*backtest.Runner)(nil)

type (
	backtestRequest  = backtest.Request
	backtestProgress = backtest.Progress
	backtestSample   = backtest.Sample
)

type backtestView struct {
	editorBase
	Unavailable bool
	Segments    []string // of the draft
	Segment     string
	Weeks       int
	P           backtestProgress
	Has         bool
	Err         string
	Percent     int
	Chart       string
	Samples     []backtestSampleRow
}

type backtestSampleRow struct {
	backtestSample
	Lines []defLine
}

// backtestPage shows the form that starts a backtest and, for an id (or
// the last backtest), its progress or result. While one runs, the page
// asks the browser to load it again every 2 seconds (a Refresh header:
// no script needed).
func (h *Handler) backtestPage(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return
	}
	v := backtestView{editorBase: h.editorBase(r, d, dr), Unavailable: h.bt == nil, Segment: r.FormValue("segment"), Weeks: 8}
	if parsed, err := d.Check(dr.Content); err == nil {
		for _, s := range parsed.Segments.Segments() {
			v.Segments = append(v.Segments, s.Name)
		}
	}
	status := http.StatusOK
	if h.bt != nil {
		if id := r.PathValue("id"); id != "" {
			v.P, err = h.bt.Progress(r.Context(), id)
			if errors.Is(err, backtest.ErrNotFound) {
				status = http.StatusNotFound
			}
		} else if v.P, err = h.bt.Last(r.Context()); errors.Is(err, backtest.ErrNotFound) {
			err = nil // none ran yet
		}
		if err != nil {
			v.Err = err.Error()
		}
		v.Has = v.P.ID != ""
	}
	if v.Has {
		if v.Segment == "" {
			v.Segment = v.P.Segment
		}
		if v.P.Total > 0 {
			v.Percent = int(min(100, v.P.Done*100/v.P.Total))
		}
		if v.P.Running() {
			w.Header().Set("Refresh", "2")
		}
		if res := v.P.Result; res != nil {
			for _, s := range res.Samples {
				v.Samples = append(v.Samples, backtestSampleRow{backtestSample: s, Lines: clauseLines(s.Explanation.Clauses)})
			}
			if len(res.History) > 0 {
				times := make([]time.Time, len(res.History))
				series := chart.Series{Name: res.Segment, Values: make([]float64, len(res.History))}
				for i, p := range res.History {
					times[i], series.Values[i] = p.At, float64(p.Members)
				}
				v.Chart = (&chart.Line{Title: "Size of " + res.Segment + " over the last weeks (estimated)", Times: times,
					Series: []chart.Series{series}, YLabel: "visitors", Integer: true, Location: h.cfg.Location,
					Width: chartWidth, Height: 220}).SVG()
			}
		}
	}
	h.render(w, r, status, "editor_backtest", "Backtest", "definitions", v)
}

func (h *Handler) backtestStart(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	if h.bt == nil {
		h.errorPage(w, r, http.StatusNotImplemented, "Backtests are not available on this dashboard: its store cannot scan its profiles.")
		return
	}
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return
	}
	parsed, err := d.Check(dr.Content)
	if err != nil {
		h.errorPage(w, r, http.StatusConflict, "The draft does not parse: "+err.Error())
		return
	}
	seg := r.FormValue("segment")
	weeks, _ := strconv.Atoi(r.FormValue("weeks"))
	req := backtestRequest{Draft: parsed.Segments, Segment: seg, Now: h.cfg.Now(), Weeks: max(weeks, 0), By: userOf(r).Name}
	if e := h.p.Engine(); e != nil {
		req.Published = e.Set()
	}
	id, err := h.bt.Start(r.Context(), req)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, backtest.ErrBusy) {
			status = http.StatusConflict
		}
		h.errorPage(w, r, status, "The backtest could not start: "+err.Error())
		return
	}
	h.redirect(w, r, "/backtest/"+url.PathEscape(id), "")
}

// backtestJSON answers a backtest's progress as JSON.
func (h *Handler) backtestJSON(w http.ResponseWriter, r *http.Request) {
	if h.bt == nil {
		http.Error(w, "backtests are not available", http.StatusNotImplemented)
		return
	}
	p, err := h.bt.Progress(r.Context(), r.PathValue("id"))
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, backtest.ErrNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		backtestProgress
		Remaining float64 `json:"remainingSeconds"`
		Running   bool    `json:"running"`
	}{p, p.Remaining().Seconds(), p.Running()})
}

func (h *Handler) backtestCancel(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.defs(w, r); !ok {
		return
	}
	if h.bt == nil {
		h.errorPage(w, r, http.StatusNotImplemented, "Backtests are not available on this dashboard.")
		return
	}
	id := r.PathValue("id")
	if err := h.bt.Cancel(r.Context(), id); err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, backtest.ErrNotFound) {
			status = http.StatusNotFound
		}
		h.errorPage(w, r, status, fmt.Sprintf("The backtest %s could not be canceled: %v", id, err))
		return
	}
	h.redirect(w, r, "/backtest/"+url.PathEscape(id), "canceled")
}

// startBacktests makes the backtest runner, if the store can scan its
// profiles and the dashboard has definitions to backtest.
func (h *Handler) startBacktests() error {
	if h.cfg.Definitions == nil {
		return nil
	}
	st := h.p.Store()
	if _, ok := st.(store.Scanner); !ok {
		return nil
	}
	r, err := backtest.New(backtest.Config{Store: st, Rate: h.cfg.BacktestRate, Logger: h.cfg.Logger})
	if err != nil {
		return fmt.Errorf("tailor/admin: backtests: %w", err)
	}
	h.bt, h.btClose = r, r.Close
	return nil
}
