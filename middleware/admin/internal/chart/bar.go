package chart

import (
	"fmt"
	"math"
)

// A Bars chart draws groups of bars side by side, each bar with an
// optional interval (a whisker from Lo to Hi), such as the conversion
// rates of an experiment's variants per segment.
type Bars struct {
	// Title is the chart's accessible name (its <title>).
	Title string
	// Width and Height are the size in pixels, legend included.
	// Defaults 720 and 260.
	Width, Height int
	// Keys name the bars of each group, in order; a bar's colour is its
	// key's. They are the legend.
	Keys []string
	// Groups are drawn left to right.
	Groups []Group
	// Percent formats values, in [0, 1], as percentages.
	Percent bool
	// YLabel is written above the vertical axis.
	YLabel string
}

// A Group is a labelled group of bars.
type Group struct {
	Label string
	Bars  []Bar
}

// A Bar is one bar. Its Key is one of Bars.Keys.
type Bar struct {
	Key   string
	Value float64
	// Lo and Hi bound the interval drawn over the bar, if Interval.
	Lo, Hi   float64
	Interval bool
	// Note is added to the bar's tooltip.
	Note string
}

// SVG renders the chart.
func (c *Bars) SVG() string {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 720
	}
	if h <= 0 {
		h = 260
	}
	var s svg
	s.open(w, h, c.Title)

	hi := 0.0
	for _, g := range c.Groups {
		for _, b := range g.Bars {
			for _, v := range []float64{b.Value, b.Hi} {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					hi = math.Max(hi, v)
				}
			}
		}
	}
	if hi == 0 {
		hi = 1
		if c.Percent {
			hi = 0.1
		}
	}
	yt := NiceTicks(0, hi, 5, false)
	step := yt[1] - yt[0]
	labels := FormatTicks(yt)
	if c.Percent {
		for i, v := range yt {
			labels[i] = FormatPercent(v, step)
		}
	}
	labelW := 0.0
	for _, l := range labels {
		labelW = math.Max(labelW, textWidth(l))
	}
	left := math.Round(labelW + 14)
	right := float64(w) - 16
	top := 22.0
	legendH := legendHeight(c.Keys, right-left)
	bottom := float64(h) - 26 - legendH
	if legendH > 0 {
		bottom -= 8
	}
	if bottom-top < 40 {
		bottom = top + 40
	}
	ymax := yt[len(yt)-1]
	yOf := func(v float64) float64 {
		v = math.Max(0, math.Min(v, ymax))
		return bottom - v/ymax*(bottom-top)
	}
	for i, v := range yt {
		y := yOf(v)
		if i > 0 {
			s.line(left, y, right, y, gridColor, 1)
		}
		s.line(left-4, y, left, y, axisColor, 1)
		s.text(left-7, y+4, "end", labels[i])
	}
	if c.YLabel != "" {
		s.text(left, top-8, "start", c.YLabel)
	}
	s.line(left, top, left, bottom, axisColor, 1)
	s.line(left, bottom, right, bottom, axisColor, 1)

	keyIndex := func(k string) int {
		for i, x := range c.Keys {
			if x == k {
				return i
			}
		}
		return len(c.Keys)
	}
	if len(c.Groups) == 0 {
		s.text((left+right)/2, (top+bottom)/2, "middle", "no data yet")
	}
	groupW := (right - left) / float64(max(len(c.Groups), 1))
	for gi, g := range c.Groups {
		gx := left + float64(gi)*groupW
		n := max(len(g.Bars), 1)
		inner := groupW * 0.8
		barW := math.Min(inner/float64(n), 60)
		x0 := gx + (groupW-barW*float64(n))/2
		for bi, b := range g.Bars {
			x := x0 + float64(bi)*barW
			v := b.Value
			if math.IsNaN(v) || math.IsInf(v, 0) {
				v = 0
			}
			y := yOf(v)
			tip := g.Label + " / " + b.Key + ": " + c.format(v)
			if b.Interval {
				tip += " [" + c.format(b.Lo) + ", " + c.format(b.Hi) + "]"
			}
			if b.Note != "" {
				tip += ", " + b.Note
			}
			fmt.Fprintf(&s.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`+"\n",
				num(x+1), num(y), num(barW-2), num(bottom-y), color(keyIndex(b.Key)), esc(tip))
			if b.Interval {
				cx := x + barW/2
				ylo, yhi := yOf(b.Lo), yOf(b.Hi)
				capW := math.Min(barW/4, 6)
				s.line(cx, ylo, cx, yhi, "#222", 1.5)
				s.line(cx-capW, ylo, cx+capW, ylo, "#222", 1.5)
				s.line(cx-capW, yhi, cx+capW, yhi, "#222", 1.5)
			}
		}
		s.text(gx+groupW/2, bottom+16, "middle", g.Label)
	}
	s.legend(c.Keys, dash, left, bottom+28, right-left)
	return s.close()
}

func (c *Bars) format(v float64) string {
	if c.Percent {
		return FormatPercent(v, 0.001)
	}
	return FormatNumber(v, 0.01)
}
