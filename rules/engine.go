package rules

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
)

// A Segment is a named group of visitors, defined by a Rule.
type Segment struct {
	// Name identifies the segment in templates and exports. Required,
	// unique in an Engine.
	Name        string
	Description string
	// Priority orders segments: higher first. Segments of equal priority
	// keep their definition order.
	Priority int
	// Group, if set, makes the segment exclusive with the others of the same
	// group: a visitor is in at most one of them, the first that matches in
	// priority order.
	Group string
	Rule  Rule
}

// An Engine classifies visitors into an ordered set of segments. It is safe
// for concurrent use.
type Engine struct {
	segs   []Segment // sorted by priority, highest first
	errors atomic.Uint64
}

// NewEngine returns an engine for segs. It reports every problem at once:
// empty and duplicate names, missing rules.
func NewEngine(segs ...Segment) (*Engine, error) {
	var errs []error
	seen := make(map[string]int, len(segs))
	for i, s := range segs {
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("segment %d: empty name", i))
		case seen[s.Name] > 0:
			errs = append(errs, fmt.Errorf("segment %d %q: duplicate name (first is segment %d)", i, s.Name, seen[s.Name]-1))
		default:
			seen[s.Name] = i + 1
		}
		if s.Rule == nil {
			errs = append(errs, fmt.Errorf("segment %d %q: no rule", i, s.Name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sorted := slices.Clone(segs)
	slices.SortStableFunc(sorted, func(a, b Segment) int { return cmp.Compare(b.Priority, a.Priority) })
	return &Engine{segs: sorted}, nil
}

// Segments returns the segments in evaluation order, highest priority first.
func (e *Engine) Segments() []Segment {
	if e == nil {
		return nil
	}
	return slices.Clone(e.segs)
}

// Classify returns the names of the segments in matches, highest priority
// first. A rule that fails counts as no match (see Errors).
func (e *Engine) Classify(in *Input) []string {
	if e == nil {
		return nil
	}
	var out []string
	var groups []string
	for i := range e.segs {
		s := &e.segs[i]
		if s.Group != "" && slices.Contains(groups, s.Group) {
			continue
		}
		ok, err := s.Rule.Match(in)
		if err != nil {
			e.errors.Add(1)
			continue
		}
		if !ok {
			continue
		}
		if out == nil {
			out = make([]string, 0, 4)
		}
		out = append(out, s.Name)
		if s.Group != "" {
			groups = append(groups, s.Group)
		}
	}
	return out
}

// Errors returns how many rule evaluations have failed since the engine was
// made.
func (e *Engine) Errors() uint64 {
	if e == nil {
		return 0
	}
	return e.errors.Load()
}
