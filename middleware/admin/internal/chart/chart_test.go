package chart

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestNiceTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lo, hi  float64
		n       int
		integer bool
		want    []float64
	}{
		{0, 1, 5, false, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{0, 97, 5, false, []float64{0, 20, 40, 60, 80, 100}},
		{0, 3, 5, true, []float64{0, 1, 2, 3}},
		{0, 3, 5, false, []float64{0, 1, 2, 3}},
		{0, 3, 10, false, []float64{0, 0.5, 1, 1.5, 2, 2.5, 3}},
		{0, 0, 5, true, []float64{0, 1}},
		{0, 0, 5, false, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{0, 0.137, 5, false, []float64{0, 0.05, 0.1, 0.15}},
		{0, 12345, 5, true, []float64{0, 5000, 10000, 15000}},
		{-3, 7, 5, true, []float64{-4, -2, 0, 2, 4, 6, 8}},
		{5, 5, 5, true, []float64{5, 6}},
		{math.NaN(), 1, 5, false, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
	} {
		got := NiceTicks(tc.lo, tc.hi, tc.n, tc.integer)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("NiceTicks(%v, %v, %d, %v) = %v, want %v", tc.lo, tc.hi, tc.n, tc.integer, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v, step float64
		want    string
	}{
		{0, 1, "0"}, {20, 20, "20"}, {0.2, 0.2, "0.2"}, {0.15, 0.05, "0.15"},
		{15000, 5000, "15k"}, {2500, 500, "2500"}, {12500, 2500, "12.5k"}, {3e6, 1e6, "3M"},
	} {
		if got := FormatNumber(tc.v, tc.step); got != tc.want {
			t.Errorf("FormatNumber(%v, %v) = %q, want %q", tc.v, tc.step, got, tc.want)
		}
	}
	for _, tc := range []struct {
		ticks []float64
		want  string
	}{
		{[]float64{0, 5000, 10000, 15000, 20000}, "0 5k 10k 15k 20k"},
		{[]float64{0, 2500, 5000, 7500}, "0 2500 5000 7500"},
		{[]float64{0, 0.5, 1, 1.5}, "0 0.5 1.0 1.5"},
		{[]float64{0, 500000, 1e6, 1.5e6}, "0 0.5M 1.0M 1.5M"},
		{[]float64{-10000, 0, 10000}, "-10k 0 10k"},
	} {
		if got := strings.Join(FormatTicks(tc.ticks), " "); got != tc.want {
			t.Errorf("FormatTicks(%v) = %q, want %q", tc.ticks, got, tc.want)
		}
	}
	if got := FormatPercent(0.125, 0.05); got != "13%" && got != "12%" {
		t.Errorf("FormatPercent(0.125, 0.05) = %q", got)
	}
	if got := FormatPercent(0.125, 0.001); got != "12.5%" {
		t.Errorf("FormatPercent(0.125, 0.001) = %q", got)
	}
}

func TestTimeTicks(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 1, 10, 3, 17, 500, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	for _, tc := range []struct {
		span   time.Duration
		loc    *time.Location
		layout string
		want   []string
	}{
		{time.Hour, time.UTC, "15:04", []string{"10:10", "10:20", "10:30", "10:40", "10:50", "11:00"}},
		{2 * time.Hour, time.UTC, "15:04", []string{"10:30", "11:00", "11:30", "12:00"}},
		{10 * time.Second, time.UTC, "15:04:05", []string{"10:03:18", "10:03:20", "10:03:22", "10:03:24", "10:03:26"}},
		{time.Hour, paris, "15:04", []string{"11:10", "11:20", "11:30", "11:40", "11:50", "12:00"}},
		{6 * time.Hour, time.FixedZone("IST", 5*3600+1800), "15:04", []string{"16:00", "17:00", "18:00", "19:00", "20:00", "21:00"}},
		{5 * 24 * time.Hour, time.UTC, "Jan 2", []string{"Mar 2", "Mar 3", "Mar 4", "Mar 5", "Mar 6"}},
	} {
		ticks, layout := TimeTicks(base, base.Add(tc.span), 6, tc.loc)
		var got []string
		for _, tk := range ticks {
			if tk.Before(base) || tk.After(base.Add(tc.span)) {
				t.Errorf("%v: tick %v outside the range", tc.span, tk)
			}
			got = append(got, tk.In(tc.loc).Format(layout))
		}
		if layout != tc.layout || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v in %v: %q %v, want %q %v", tc.span, tc.loc, layout, got, tc.layout, tc.want)
		}
	}
}

// wellFormed checks that svg is one well-formed XML element without
// scripts, styles or external references.
func wellFormed(t *testing.T, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			switch tok.Name.Local {
			case "script", "style", "foreignObject", "image", "use", "a":
				t.Errorf("element <%s> in a chart", tok.Name.Local)
			}
			for _, a := range tok.Attr {
				if a.Name.Local == "style" || a.Name.Local == "href" || strings.HasPrefix(a.Name.Local, "on") {
					t.Errorf("attribute %s in a chart", a.Name.Local)
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || !strings.HasPrefix(svg, "<svg ") {
		t.Errorf("want one <svg> root, got %d", roots)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Errorf("%s differs from the golden file (run go test -update after checking it):\n%s", name, got)
	}
}

func segmentSizes() *Line {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var times []time.Time
	for i := range 61 {
		times = append(times, t0.Add(time.Duration(i)*time.Minute))
	}
	series := []Series{{Name: "customer"}, {Name: "red-sox-fan"}, {Name: "returning & <loyal>"}}
	for i := range times {
		f := float64(i)
		series[0].Values = append(series[0].Values, math.Floor(f*1.5))
		series[1].Values = append(series[1].Values, math.Floor(40+20*math.Sin(f/8)))
		v := math.Floor(100 - f)
		if i >= 20 && i < 25 {
			v = math.NaN() // the sampler failed
		}
		series[2].Values = append(series[2].Values, v)
	}
	return &Line{Title: "Segment sizes", Times: times, Series: series, YLabel: "visitors", Integer: true, Location: time.UTC}
}

func TestLineGolden(t *testing.T) {
	t.Parallel()
	c := segmentSizes()
	got := c.SVG()
	wellFormed(t, got)
	golden(t, "line.svg", got)
	if got2 := c.SVG(); got2 != got {
		t.Error("two renderings differ")
	}
	// The name is escaped, and the gap splits the third line in two.
	if !strings.Contains(got, "returning &amp; &lt;loyal&gt;") {
		t.Error("series name not escaped")
	}
	paths := strings.Count(got, "<path ")
	if paths != 3 {
		t.Errorf("%d paths, want 3", paths)
	}
	third := got[strings.LastIndex(got, "<path "):]
	if n := strings.Count(third[:strings.Index(third, "fill=")], "M"); n != 2 {
		t.Errorf("third line has %d moves, want 2 (a gap)", n)
	}
	for _, label := range []string{">09:00<", ">09:30<", ">10:00<", ">visitors<", ">customer 90<", ">red-sox-fan 58<", ">0<", ">100<"} {
		if !strings.Contains(got, label) {
			t.Errorf("no label %s", label)
		}
	}
}

func TestLineEdgeCases(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for name, c := range map[string]*Line{
		"empty":      {Title: "nothing"},
		"no series":  {Times: []time.Time{t0}},
		"one point":  {Times: []time.Time{t0}, Series: []Series{{Name: "a", Values: []float64{3}}}, Integer: true},
		"all zero":   {Times: []time.Time{t0, t0.Add(time.Minute)}, Series: []Series{{Name: "a", Values: []float64{0, 0}}}},
		"short":      {Times: []time.Time{t0, t0.Add(time.Minute)}, Series: []Series{{Name: "a", Values: []float64{1}}}},
		"all NaN":    {Times: []time.Time{t0, t0.Add(time.Minute)}, Series: []Series{{Name: "a", Values: []float64{math.NaN(), math.Inf(1)}}}},
		"tiny":       {Width: 50, Height: 20, Times: []time.Time{t0}, Series: []Series{{Name: "a", Values: []float64{1}}}},
		"many names": {Times: []time.Time{t0}, Series: manySeries(25)},
	} {
		got := c.SVG()
		wellFormed(t, got)
		if strings.Contains(got, "NaN") || strings.Contains(got, "Inf") {
			t.Errorf("%s: NaN or Inf in the output", name)
		}
		if name == "empty" || name == "no series" || name == "all NaN" {
			if !strings.Contains(got, "no data yet") {
				t.Errorf("%s: no 'no data yet'", name)
			}
		}
		if name == "one point" || name == "tiny" || name == "many names" {
			if !strings.Contains(got, "one measurement so far; the chart draws from the second") || strings.Contains(got, "<path ") || strings.Contains(got, "<circle ") {
				t.Errorf("%s: a chart of one time is drawn, or does not say why not:\n%s", name, got)
			}
		}
		if name == "one point" && !strings.Contains(got, ">a 3<") {
			t.Errorf("%s: the legend does not say the value:\n%s", name, got)
		}
		if name == "short" && !strings.Contains(got, "<circle ") {
			t.Errorf("%s: a single value is not drawn", name)
		}
	}
}

// TestLineCoinciding: lines with the same values are told apart by their
// dash patterns, and the legend gives every value and says which lines
// coincide with an earlier one.
func TestLineCoinciding(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := &Line{Times: []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)}, Integer: true, Series: []Series{
		{Name: "a", Values: []float64{0, 1, 1}},
		{Name: "b", Values: []float64{0, 1, 1}},
		{Name: "c", Values: []float64{0, 1, 1}},
		{Name: "d", Values: []float64{0, 1, 2}},
		{Name: "e", Values: []float64{math.NaN(), math.NaN(), math.NaN()}},
	}}
	got := c.SVG()
	wellFormed(t, got)
	for _, label := range []string{">a 1<", ">b 1 (= a)<", ">c 1 (= a)<", ">d 2<", ">e —<"} {
		if !strings.Contains(got, label) {
			t.Errorf("no legend item %s:\n%s", label, got)
		}
	}
	dashes := map[string]bool{}
	for _, p := range strings.Split(got, "<path ")[1:] {
		d := ""
		if i := strings.Index(p, `stroke-dasharray="`); i >= 0 && i < strings.Index(p, ">") {
			d = p[i:]
			d = d[:strings.Index(d[len(`stroke-dasharray="`):], `"`)+len(`stroke-dasharray="`)]
		}
		dashes[d] = true
	}
	if len(dashes) != 4 {
		t.Errorf("the four lines have %d dash patterns, want 4: %v", len(dashes), dashes)
	}
	// Every pair of colour and dash differs among the first 50 lines.
	seen := map[string]int{}
	for i := range 50 {
		k := color(i) + "/" + lineDash(i)
		if j, ok := seen[k]; ok {
			t.Errorf("lines %d and %d look the same (%s)", j, i, k)
		}
		seen[k] = i
	}
}

func manySeries(n int) []Series {
	var out []Series
	for i := range n {
		out = append(out, Series{Name: strings.Repeat("x", i), Values: []float64{float64(i)}})
	}
	return out
}

func TestBarsGolden(t *testing.T) {
	t.Parallel()
	c := &Bars{
		Title: "hero: conversion rate", Percent: true, YLabel: "conversion rate",
		Keys: []string{"control", "red-sox", "$holdout"},
		Groups: []Group{
			{Label: "customer", Bars: []Bar{
				{Key: "control", Value: 0.10, Lo: 0.08, Hi: 0.125, Interval: true},
				{Key: "red-sox", Value: 0.14, Lo: 0.115, Hi: 0.17, Interval: true, Note: "P(beats control) 97.1%"},
				{Key: "$holdout", Value: 0.09, Lo: 0.05, Hi: 0.15, Interval: true},
			}},
			{Label: "<all>", Bars: []Bar{
				{Key: "control", Value: 0.05, Lo: 0.045, Hi: 0.056, Interval: true},
				{Key: "red-sox", Value: 0.051, Lo: 0.046, Hi: 0.057, Interval: true},
			}},
		},
	}
	got := c.SVG()
	wellFormed(t, got)
	golden(t, "bars.svg", got)
	if !strings.Contains(got, "&lt;all&gt;") || !strings.Contains(got, "customer / red-sox: 14.0% [11.5%, 17.0%], P(beats control) 97.1%") {
		t.Errorf("labels or tooltips missing:\n%s", got)
	}
	if n := strings.Count(got, "<rect "); n != 5 {
		t.Errorf("%d bars, want 5", n)
	}
	empty := (&Bars{}).SVG()
	wellFormed(t, empty)
	if !strings.Contains(empty, "no data yet") {
		t.Error("empty bar chart does not say so")
	}
}
