package chart

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A Line chart draws time series sharing the same sample times.
type Line struct {
	// Title is the chart's accessible name (its <title>).
	Title string
	// Width and Height are the size in pixels, legend included.
	// Defaults 720 and 260.
	Width, Height int
	// Times are the sample times, in increasing order.
	Times []time.Time
	// Series are the lines; each has a value per time. NaN is a missing
	// value: the line breaks there.
	Series []Series
	// YLabel is written above the vertical axis.
	YLabel string
	// Integer keeps vertical ticks on whole numbers (for counts).
	Integer bool
	// Location is the zone of the time labels. Default UTC.
	Location *time.Location
	// Empty is the text shown when there is nothing to plot.
	// Default "no data yet".
	Empty string
	// Single is the text shown instead of the lines when there is one
	// time only, which makes no line. Default "one measurement so far;
	// the chart draws from the second".
	Single string
}

// A Series is one line of a chart.
type Series struct {
	Name   string
	Values []float64
}

// SVG renders the chart.
func (c *Line) SVG() string {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 720
	}
	if h <= 0 {
		h = 260
	}
	names := c.legendNames()
	var s svg
	s.open(w, h, c.Title)

	// Values range.
	lo, hi := 0.0, math.Inf(-1)
	have := false
	for _, se := range c.Series {
		for i, v := range se.Values {
			if i >= len(c.Times) || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			have = true
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	single := have && len(c.Times) == 1
	if !have {
		lo, hi = 0, 1
	}
	yt := NiceTicks(lo, hi, 5, c.Integer)
	ylabels := FormatTicks(yt)
	labelW := 0.0
	for _, l := range ylabels {
		labelW = math.Max(labelW, textWidth(l))
	}

	// Plot area.
	left := math.Round(labelW + 14)
	right := float64(w) - 16
	top := 22.0
	legendH := legendHeight(names, right-left)
	bottom := float64(h) - 26 - legendH
	if legendH > 0 {
		bottom -= 8
	}
	if bottom-top < 40 {
		bottom = top + 40
	}

	ymin, ymax := yt[0], yt[len(yt)-1]
	yOf := func(v float64) float64 { return bottom - (v-ymin)/(ymax-ymin)*(bottom-top) }

	// Time range.
	var t0, t1 time.Time
	if len(c.Times) > 0 {
		t0, t1 = c.Times[0], c.Times[len(c.Times)-1]
	}
	if !t1.After(t0) {
		t0, t1 = t0.Add(-30*time.Second), t0.Add(30*time.Second)
	}
	xOf := func(t time.Time) float64 {
		return left + float64(t.Sub(t0))/float64(t1.Sub(t0))*(right-left)
	}

	// Grid and vertical axis.
	for i, v := range yt {
		y := yOf(v)
		if i > 0 {
			s.line(left, y, right, y, gridColor, 1)
		}
		s.line(left-4, y, left, y, axisColor, 1)
		s.text(left-7, y+4, "end", ylabels[i])
	}
	if c.YLabel != "" {
		s.text(left, top-8, "start", c.YLabel)
	}
	// Time axis.
	if len(c.Times) > 0 {
		ticks, layout := TimeTicks(t0, t1, max(2, int((right-left)/90)), c.Location)
		if len(ticks) < 2 {
			// A span too short for round times: label its ends.
			ticks, layout = []time.Time{t0, t1}, "15:04:05"
		}
		loc := c.Location
		if loc == nil {
			loc = time.UTC
		}
		for _, t := range ticks {
			x := xOf(t)
			label := t.In(loc).Format(layout)
			anchor, half := "middle", textWidth(label)/2
			switch {
			case x+half > float64(w)-2: // keep the label inside the chart
				anchor = "end"
			case x-half < 2:
				anchor = "start"
			}
			s.line(x, bottom, x, bottom+4, axisColor, 1)
			s.text(x, bottom+16, anchor, label)
		}
	}
	s.line(left, top, left, bottom, axisColor, 1)
	s.line(left, bottom, right, bottom, axisColor, 1)

	switch {
	case !have:
		empty := c.Empty
		if empty == "" {
			empty = "no data yet"
		}
		s.text((left+right)/2, (top+bottom)/2, "middle", empty)
	case single:
		// One time makes no line: the legend says each value.
		note := c.Single
		if note == "" {
			note = "one measurement so far; the chart draws from the second"
		}
		s.text((left+right)/2, (top+bottom)/2, "middle", note)
		s.legend(names, lineDash, left, bottom+28, right-left)
		return s.close()
	}

	// Lines, and dots where a value stands alone.
	for i, se := range c.Series {
		var d strings.Builder
		pen := false
		n := min(len(se.Values), len(c.Times))
		for k := range n {
			v := se.Values[k]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				pen = false
				continue
			}
			op := "L"
			if !pen {
				op = "M"
			}
			if d.Len() > 0 {
				d.WriteByte(' ')
			}
			fmt.Fprintf(&d, "%s%s %s", op, num(xOf(c.Times[k])), num(yOf(v)))
			pen = true
		}
		if d.Len() > 0 {
			da := ""
			if dd := lineDash(i); dd != "" {
				da = ` stroke-dasharray="` + dd + `"`
			}
			fmt.Fprintf(&s.b, `<path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s><title>%s</title></path>`+"\n",
				d.String(), color(i), da, esc(se.Name))
		}
		for k := range n {
			v := se.Values[k]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			alone := (k == 0 || math.IsNaN(se.Values[k-1])) && (k == n-1 || math.IsNaN(se.Values[k+1]))
			if alone {
				fmt.Fprintf(&s.b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", num(xOf(c.Times[k])), num(yOf(v)), color(i))
			}
		}
	}

	s.legend(names, lineDash, left, bottom+28, right-left)
	return s.close()
}

// legendNames returns the legend's item of each series: its name, its
// last value, and the earlier series it coincides with at every time, if
// any (its line is then drawn over that one's).
func (c *Line) legendNames() []string {
	names := make([]string, len(c.Series))
	for i, se := range c.Series {
		n := min(len(se.Values), len(c.Times))
		last := math.NaN()
		for k := n - 1; k >= 0; k-- {
			if v := se.Values[k]; !math.IsNaN(v) && !math.IsInf(v, 0) {
				last = v
				break
			}
		}
		name := se.Name
		if math.IsNaN(last) {
			name += " —"
		} else {
			name += " " + c.formatValue(last)
			for j := range i {
				if c.coincide(se, c.Series[j]) {
					name += " (= " + c.Series[j].Name + ")"
					break
				}
			}
		}
		names[i] = name
	}
	return names
}

// coincide reports whether a and b have the same values at every time.
func (c *Line) coincide(a, b Series) bool {
	at := func(s Series, k int) float64 {
		if k < len(s.Values) && !math.IsInf(s.Values[k], 0) {
			return s.Values[k]
		}
		return math.NaN()
	}
	for k := range c.Times {
		x, y := at(a, k), at(b, k)
		if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
			return false
		}
	}
	return true
}

// formatValue formats a value for the legend: whole for Integer charts,
// else with at most two decimals.
func (c *Line) formatValue(v float64) string {
	if c.Integer {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	t := strconv.FormatFloat(v, 'f', 2, 64)
	t = strings.TrimSuffix(strings.TrimRight(t, "0"), ".")
	return trim(t)
}
