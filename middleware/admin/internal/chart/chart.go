// Package chart renders small SVG charts on the server: a line chart of
// time series and a bar chart with intervals. The output is a standalone
// <svg> element without scripts, styles or external references (colours
// and fonts are presentation attributes), so it passes a strict Content
// Security Policy, and it is deterministic: the same chart gives the same
// bytes.
package chart

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"time"
)

// Palette holds the series colours, in order; past its end they repeat
// with a dash pattern.
var Palette = []string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#79706e",
}

// dash returns the stroke-dasharray of the i-th series, "" for solid.
func dash(i int) string {
	switch (i / len(Palette)) % 3 {
	case 1:
		return "6 3"
	case 2:
		return "2 2"
	}
	return ""
}

// lineDashes are the dash patterns of lines, so that lines that coincide
// stay distinguishable: the gaps of the one on top show the ones beneath.
var lineDashes = []string{"", "8 4", "2 3", "10 3 2 3", "4 4"}

// lineDash returns the stroke-dasharray of the i-th line, "" for solid:
// each of the first 50 lines has its own pair of colour and dash.
func lineDash(i int) string {
	return lineDashes[(i+i/len(Palette))%len(lineDashes)]
}

func color(i int) string { return Palette[i%len(Palette)] }

const (
	fontFamily = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
	fontSize   = 11
	charWidth  = 6.2 // average advance of the font at fontSize, for layout
	axisColor  = "#555"
	gridColor  = "#e3e3e3"
	textColor  = "#333"
)

// svg accumulates the markup of a chart.
type svg struct {
	b strings.Builder
}

func (s *svg) open(w, h int, title string) {
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" font-family="%s" font-size="%d">`,
		w, h, w, h, fontFamily, fontSize)
	if title != "" {
		s.b.WriteString("<title>" + esc(title) + "</title>")
	}
	s.b.WriteByte('\n')
}

func (s *svg) close() string {
	s.b.WriteString("</svg>\n")
	return s.b.String()
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, width float64) {
	fmt.Fprintf(&s.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"/>`+"\n",
		num(x1), num(y1), num(x2), num(y2), stroke, num(width))
}

// text writes a label; anchor is "start", "middle" or "end".
func (s *svg) text(x, y float64, anchor, label string) {
	fmt.Fprintf(&s.b, `<text x="%s" y="%s" text-anchor="%s" fill="%s">%s</text>`+"\n",
		num(x), num(y), anchor, textColor, esc(label))
}

// num formats a coordinate with at most one decimal.
func num(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func esc(s string) string { return html.EscapeString(s) }

// textWidth estimates the width of a label in pixels.
func textWidth(s string) float64 { return float64(len([]rune(s))) * charWidth }

// legend lays out items in rows within width, from (x, y); it returns the
// height used. Each item is a swatch in its colour and dash (of dashOf)
// and a name.
func (s *svg) legend(names []string, dashOf func(int) string, x0, y0, width float64) float64 {
	if len(names) == 0 {
		return 0
	}
	const row = 18.0
	x, y := x0, y0
	for i, name := range names {
		w := 22 + textWidth(name) + 14
		if x > x0 && x+w > x0+width {
			x, y = x0, y+row
		}
		d := ""
		if dd := dashOf(i); dd != "" {
			d = ` stroke-dasharray="` + dd + `"`
		}
		fmt.Fprintf(&s.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"%s/>`+"\n",
			num(x), num(y+row/2), num(x+16), num(y+row/2), color(i), d)
		fmt.Fprintf(&s.b, `<text x="%s" y="%s" fill="%s">%s</text>`+"\n", num(x+22), num(y+row/2+4), textColor, esc(name))
		x += w
	}
	return y - y0 + row
}

// legendHeight is the height legend would use.
func legendHeight(names []string, width float64) float64 {
	if len(names) == 0 {
		return 0
	}
	rows, x := 1, 0.0
	for _, name := range names {
		w := 22 + textWidth(name) + 14
		if x > 0 && x+w > width {
			rows++
			x = 0
		}
		x += w
	}
	return float64(rows) * 18
}

// NiceTicks returns round tick values covering [lo, hi]: about n steps of
// 1, 2 or 5 times a power of ten. With integer, steps are at least 1.
// The first tick is at most lo and the last at least hi.
func NiceTicks(lo, hi float64, n int, integer bool) []float64 {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		lo, hi = 0, 1
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		if integer {
			hi = lo + 1
		} else if lo == 0 {
			hi = 1
		} else {
			hi = lo + math.Abs(lo)*0.1
		}
	}
	n = max(n, 1)
	step := niceStep((hi - lo) / float64(n))
	if integer && step < 1 {
		step = 1
	}
	first := math.Floor(lo/step) * step
	last := math.Ceil(hi/step) * step
	var out []float64
	for i := 0; ; i++ {
		v := first + float64(i)*step
		// Round away the float error of the multiplication.
		scale := math.Pow(10, float64(decimals(step)))
		v = math.Round(v*scale) / scale
		if v == 0 {
			v = 0 // no -0
		}
		out = append(out, v)
		if v >= last-step*1e-9 || i > 1000 {
			break
		}
	}
	return out
}

// niceStep returns 1, 2 or 5 times a power of ten, at least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// FormatNumber formats a tick value: integers with thousands as k and
// millions as M from 10,000 on, others with the decimals step needs.
func FormatNumber(v, step float64) string {
	return formatIn(v, step, unitOf(math.Abs(v), step))
}

// FormatTicks formats the ticks of an axis in one unit, chosen by the
// largest: 0, 5k, 10k, 15k rather than 0, 5000, 10k, 15k.
func FormatTicks(ticks []float64) []string {
	step, top := 1.0, 0.0
	if len(ticks) > 1 {
		step = ticks[1] - ticks[0]
	}
	for _, v := range ticks {
		top = math.Max(top, math.Abs(v))
	}
	u := unitOf(top, step)
	out := make([]string, len(ticks))
	for i, v := range ticks {
		out[i] = formatIn(v, step, u)
	}
	return out
}

// unitOf returns the divisor for values up to a with ticks step apart.
func unitOf(a, step float64) float64 {
	switch {
	case a >= 1e6 && step >= 1e5:
		return 1e6
	case a >= 1e4 && step >= 1e3:
		return 1e3
	}
	return 1
}

func formatIn(v, step, unit float64) string {
	if v == 0 {
		return "0"
	}
	s := trim(strconv.FormatFloat(v/unit, 'f', decimals(step/unit), 64))
	switch {
	case unit == 1e6:
		return s + "M"
	case unit == 1e3:
		return s + "k"
	}
	return s
}

// FormatPercent formats a share in [0, 1] as a percentage with the
// decimals step needs.
func FormatPercent(v, step float64) string {
	return trim(strconv.FormatFloat(v*100, 'f', decimals(step*100), 64)) + "%"
}

// decimals returns how many decimals write multiples of step exactly (at
// most 6).
func decimals(step float64) int {
	if step <= 0 || math.IsNaN(step) || math.IsInf(step, 0) {
		return 0
	}
	for d := range 6 {
		x := step * math.Pow(10, float64(d))
		if math.Abs(x-math.Round(x)) < 1e-6*x {
			return d
		}
	}
	return 6
}

func trim(s string) string {
	if s == "-0" {
		return "0"
	}
	return s
}

// timeSteps are the candidate spacings of time ticks.
var timeSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// TimeTicks returns tick times within [t0, t1], at most about n, on round
// times of loc (whole minutes, hours, days...), and the layout that
// formats them.
func TimeTicks(t0, t1 time.Time, n int, loc *time.Location) ([]time.Time, string) {
	if loc == nil {
		loc = time.UTC
	}
	span := t1.Sub(t0)
	n = max(n, 1)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			step = s
			break
		}
	}
	layout := "15:04"
	switch {
	case step < time.Minute:
		layout = "15:04:05"
	case step >= 24*time.Hour:
		layout = "Jan 2"
	case span > 24*time.Hour:
		layout = "Jan 2 15:04"
	}
	var first time.Time
	if step >= 24*time.Hour {
		y, m, d := t0.In(loc).Date()
		first = time.Date(y, m, d, 0, 0, 0, 0, loc)
		for first.Before(t0) {
			first = first.AddDate(0, 0, 1)
		}
		days := int(step / (24 * time.Hour))
		var out []time.Time
		for t := first; !t.After(t1); t = t.AddDate(0, 0, days) {
			out = append(out, t)
		}
		return out, layout
	}
	// Align to step in the zone's wall clock at t0.
	_, off := t0.In(loc).Zone()
	wall := t0.Unix() + int64(off)
	s := int64(step / time.Second)
	start := wall / s * s
	if start < wall {
		start += s
	}
	first = time.Unix(start-int64(off), 0)
	if first.Before(t0) {
		first = first.Add(step)
	}
	var out []time.Time
	for t := first; !t.After(t1); t = t.Add(step) {
		out = append(out, t)
	}
	return out, layout
}
