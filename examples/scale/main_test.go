package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/memory"
)

// TestScaleBolt runs the whole measure on a small bbolt store and checks
// that the report has every figure, and that the run removed its file.
func TestScaleBolt(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store and idles: not under -short")
	}
	db := filepath.Join(t.TempDir(), "scale.db")
	var out, errw bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, []string{"-store", "bolt", "-db", db, "-visitors", "300", "-idle", "2s", "-trials", "2"}, &out, &errw); err != nil {
		t.Fatalf("run: %v\nreport:\n%s\nlog:\n%s", err, out.String(), errw.String())
	}
	report := out.String()
	t.Logf("report:\n%s", report)
	for _, want := range []string{
		`(?m)^  visitors +300, \d+ events \(per visitor: mean [\d.]+, p50 \d+, p90 \d+, p99 \d+, max \d+\)$`,
		`(?m)^  shape +\d+ buyers \(\d+ orders\), \d+ signed in, \d+ exposed to promo-2026-11$`,
		`(?m)^  took +[\dµmsh.]+: \d+ visitors/s, \d+ events/s`,
		`(?m)^  open store +[\dµmsh.]+$`,
		`(?m)^  site\.Open +[\dµmsh.]+$`,
		`(?m)^  first response +[\dµmsh.]+ \(GET / 200, \d+ bytes\)$`,
		`(?m)^  total +[\dµmsh.]+$`,
		`(?m)^  store size +[\d.]+ MiB`,
		`(?m)^  backfill +took [\dµmsh.]+ by its record \(300 profiles, \d+/s\); seen done [\dµmsh.]+ after site\.Open began$`,
		`(?m)^  backfill reads +Range \d+ \(\d+ profiles, \d+ run to the end\), Scan \d+ \(\d+ profiles\), Load \d+$`,
		`(?m)^  backfill calls +\S`,
		`(?m)^  idle +2s$`,
		`(?m)^  cpu +[\dµmsh.]+ user\+sys = [\d.]+% of one core$`,
		`(?m)^  second site +open in [\dµmsh.]+ \(the first one's handle on the store\)$`,
		`(?m)^  trial 1 +checkout and its page answered in [\dµmsh.]+; customer (\d+)→\d+ seen on A after [\dµmsh.]+, on B after [\dµmsh.]+$`,
		`(?m)^  trial 2 +checkout .* seen on A after [\dµmsh.]+, on B after [\dµmsh.]+$`,
		`(?m)^  median +A \(the site that served the visitor\) [\dµmsh.]+, B \(the second site\) [\dµmsh.]+$`,
		`(?m)^4\. reads of the profiles in the idle 2s$`,
		`(?m)^  store reads +Range \d+ \(\d+ profiles, \d+ run to the end\), Scan \d+ \(\d+ profiles\), Load \d+$`,
		`(?m)^  full read +(no|yes|none whole)`,
	} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("report lacks %s", want)
		}
	}
	if strings.Contains(report, "never") {
		t.Errorf("a freshness poll never saw the change")
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("the store's file is left after the run: %v", err)
	}
}

// TestFillShape checks the synthetic visitors against the shape that
// newVisitor documents, on the events a store folds.
func TestFillShape(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	st := memory.New(store.Limits{})
	defer st.Close()
	const n = 2000
	fs, err := fill(context.Background(), st, n, 100, 2, 7, now, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if fs.Visitors != n || fs.P50 < minEvents || fs.Max > maxEvents || fs.P99 <= 2*fs.P50 {
		t.Errorf("events per visitor: %+v, want %d visitors of %d to %d events, heavy-tailed", fs, n, minEvents, maxEvents)
	}
	if share := float64(fs.Buyers) / n; share < buyerShare/2 || share > buyerShare*1.5 {
		t.Errorf("%d buyers of %d", fs.Buyers, n)
	}
	var profiles, buyers, identified, exposed, events int
	err = st.Range(context.Background(), func(p *store.Profile) bool {
		profiles++
		if len(p.ID) != 32 || p.Visits < 1 || p.LastSeen.After(now) || p.FirstSeen.Before(now.Add(-history)) {
			t.Errorf("profile %s: %d visits, seen %s to %s", p.ID, p.Visits, p.FirstSeen, p.LastSeen)
		}
		for _, k := range p.Counts {
			events += k
		}
		if p.Purchases.Count > 0 {
			buyers++
		}
		if p.UserID != "" {
			identified++
		}
		if p.Trait("experiment:"+exposureKey) != nil {
			exposed++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if profiles != n || buyers != fs.Buyers || identified != fs.Identified || exposed != fs.Exposed || events != fs.Events {
		t.Errorf("stored %d profiles, %d buyers, %d identified, %d exposed, %d events; fill reported %+v", profiles, buyers, identified, exposed, events, fs)
	}
	// The same seed gives the same visitors.
	a, b := newVisitor(7, 42, now), newVisitor(7, 42, now)
	if a.id != b.id || len(a.events) != len(b.events) {
		t.Errorf("visitor 42 of seed 7 differs between two draws")
	}
}

// TestCountCalls checks that the counting wrapper keeps the store's
// optional interfaces, and counts the reads of profiles.
func TestCountCalls(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var c calls
	w, err := countCalls(st, &c)
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"BatchApplier": is[store.BatchApplier](w), "Ranger": is[store.Ranger](w), "Expirer": is[store.Expirer](w),
		"Invalidator": is[store.Invalidator](w), "Leaser": is[store.Leaser](w), "Counter": is[store.Counter](w),
		"Rechecker": is[store.Rechecker](w), "Scanner": is[store.Scanner](w), "Documents": is[store.Documents](w),
	} {
		if !ok {
			t.Errorf("the wrapper of a bolt store is not a %s", name)
		}
	}
	if is[store.Journal](w) != is[store.Journal](st) {
		t.Errorf("the wrapper is a store.Journal: %v, the store: %v", is[store.Journal](w), is[store.Journal](st))
	}
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := w.Apply(ctx, id, []store.Event{{ID: "e1", Type: store.TypePage, Path: "/", Time: now}}); err != nil {
			t.Fatal(err)
		}
	}
	w.(store.Ranger).Range(ctx, func(*store.Profile) bool { return true })
	w.(store.Ranger).Range(ctx, func(*store.Profile) bool { return false })
	w.(store.Scanner).Scan(ctx, "", 10)
	w.Load(ctx, "a")
	got := c.snapshot()
	if want := "Range 2 (4 profiles, 1 run to the end), Scan 1 (3 profiles), Load 1"; got.reads() != want {
		t.Errorf("reads: %s, want %s", got.reads(), want)
	}
	if want := "Apply 3"; got.others() != want {
		t.Errorf("other calls: %s, want %s", got.others(), want)
	}
	mem := memory.New(store.Limits{})
	defer mem.Close()
	if w, err := countCalls(mem, &c); err != nil || !is[store.Journal](w) {
		t.Errorf("the wrapper of a memory store (a Journal): %T, %v", w, err)
	}
	if _, err := countCalls(struct{ store.Store }{mem}, &c); err == nil {
		t.Errorf("a store without BatchApplier was wrapped")
	}
}
