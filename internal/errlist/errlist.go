// Package errlist is the list of errors of the parsers and validators that
// report every problem of an input at once (segments, conditions, slots,
// experiments), so that all of them print and unwrap the same way.
package errlist

import (
	"fmt"
	"strings"
)

// A List is the problems of one input, in the order they were found (or
// in source order). errors.Is and errors.As look into each.
type List[E error] []E

// Error returns the only problem's message, or the count and one problem
// per indented line:
//
//	2 problems:
//		slots.json:3:9: /slots/0/name: the name is a string, not a number
//		slots.json:5:1: /slots/0: slot "" needs a "default" variant
func (l List[E]) Error() string {
	switch len(l) {
	case 0:
		return "no problems"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(l))
	for _, e := range l {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems as []error, for errors.Is and errors.As.
func (l List[E]) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
