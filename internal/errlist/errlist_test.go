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
		l    errlist.List[*myErr]
		want string
	}{
		{nil, "no problems"},
		{errlist.List[*myErr]{a}, "a: bad"},
		{errlist.List[*myErr]{a, b}, "2 problems:\n\ta: bad\n\tb: worse"},
	} {
		if got := tc.l.Error(); got != tc.want {
			t.Errorf("Error(%v) = %q, want %q", tc.l, got, tc.want)
		}
	}
	var err error = errlist.List[*myErr]{a, b}
	var got *myErr
	if !errors.Is(err, b) || !errors.As(err, &got) || got != a {
		t.Errorf("errors.Is/As: %v", got)
	}
	var l errlist.List[*myErr]
	if !errors.As(fmtWrap(err), &l) || len(l) != 2 {
		t.Errorf("errors.As the list: %v", l)
	}
}

type wrapped struct{ err error }

func (w wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func fmtWrap(err error) error { return wrapped{err} }
