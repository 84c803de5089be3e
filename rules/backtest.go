package rules

import (
	"fmt"
)

// What a job that evaluates one segment over many stored profiles needs (a
// backtest of a draft segment before it is published): the segment's
// membership alone, without classifying the visitor into every segment of
// the set, and whether the answer depends on the time or on the request.

// Member reports whether the visitor of in is in the segment name of s at
// in.Now, as Engine.Classify would say with s loaded, but evaluating only
// that segment and those it depends on (the segments it references with
// inSegment and those before it in its exclusive group). As in Classify,
// a rule that fails counts as no match; the error says so when the
// segment's own rule failed, and names an unknown segment.
func (s *Set) Member(in *Input, name string) (bool, error) {
	if s == nil {
		return false, fmt.Errorf("rules: no segment is named %q: the set is empty", name)
	}
	i, ok := s.index[name]
	if !ok {
		return false, fmt.Errorf("rules: no segment is named %q", name)
	}
	ev := in.begin()
	ev.set = s
	if cap(ev.memo) < len(s.segs) {
		ev.memo = make([]memberState, len(s.segs))
	}
	ev.memo = ev.memo[:len(s.segs)]
	clear(ev.memo)
	in1 := ev.member(in, i)
	var err error
	if ev.memo[i] == memberError {
		// member keeps no error: evaluate again for its message.
		if _, err = safeMatch(s.segs[i].Rule, in); err == nil {
			err = fmt.Errorf("segment %q: its rule failed", name)
		} else {
			err = fmt.Errorf("segment %q: %w", name, err)
		}
	}
	in.release()
	return in1, err
}

// SegmentDependencies returns what the membership of the segment name
// depends on besides the profile: the union of the dependencies of its
// rule, of the segments it references with inSegment, and of those before
// it in its exclusive group, transitively. A rule that does not say what
// it depends on (it is not Dependent) depends on every request fact and
// on the time. Time says that the segment's membership may change as time
// passes, the profile staying the same (a window such as "in the last 7
// days"): then its size in the past can be estimated from the events in
// the profiles. It reports false for an unknown segment.
func (s *Set) SegmentDependencies(name string) (Dependencies, bool) {
	if s == nil {
		return Dependencies{}, false
	}
	start, ok := s.index[name]
	if !ok {
		return Dependencies{}, false
	}
	seen := make([]bool, len(s.segs))
	var d Dependencies
	var visit func(k int)
	visit = func(k int) {
		if seen[k] {
			return
		}
		seen[k] = true
		d = d.Union(s.deps[k])
		walkRules(s.segs[k].Rule, func(r Rule) {
			if b, ok := r.(*builtin); ok && b.name == "inSegment" && b.err == nil {
				if j, ok := s.index[b.ref]; ok {
					visit(j)
				}
			}
		})
		for _, j := range s.groupPrev[k] {
			visit(j)
		}
	}
	visit(start)
	return d, true
}
