// Package errlist formats lists of errors, for the error types that report
// every problem of an input at once.
package errlist

import (
	"fmt"
	"strings"
)

// Error formats l: its only error's message, or the count and one problem
// per indented line.
func Error[E error](l []E) string {
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

// Unwrap returns the errors of l as []error, for errors.Is and errors.As.
func Unwrap[E error](l []E) []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
