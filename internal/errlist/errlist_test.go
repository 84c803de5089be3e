package errlist_test

import (
	"errors"
	"testing"

	"github.com/tailorhq/tailor/internal/errlist"
)

type myErr struct{ s string }

func (e *myErr) Error() string { return e.s }

func TestErrorAndUnwrap(t *testing.T) {
	a, b := &myErr{"a: bad"}, &myErr{"b: worse"}
	for _, tc := range []struct {
		l    []*myErr
		want string
	}{
		{nil, "no problems"},
		{[]*myErr{a}, "a: bad"},
		{[]*myErr{a, b}, "2 problems:\n\ta: bad\n\tb: worse"},
	} {
		if got := errlist.Error(tc.l); got != tc.want {
			t.Errorf("Error(%v) = %q, want %q", tc.l, got, tc.want)
		}
	}
	if errs := errlist.Unwrap([]*myErr{a, b}); len(errs) != 2 || !errors.Is(errors.Join(errs...), b) {
		t.Errorf("Unwrap: %v", errs)
	}
}
