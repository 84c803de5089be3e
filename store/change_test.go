package store_test

import (
	"strings"
	"testing"

	"github.com/tailorhq/tailor/store"
)

func TestChangeRoundTrip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", store.MaxLeaseName)
	for _, tc := range []struct {
		c   store.Change
		msg string
	}{
		{store.Change{ID: "visitor-1"}, "visitor-1"},
		{store.Change{ID: "visitor-1", Deleted: true}, "\x01visitor-1"},
		{store.Change{ID: "ü ☃"}, "ü ☃"},
		{store.Change{Document: "x/y"}, "\x02x/y"},
		{store.Change{Document: "\x01x"}, "\x02\x01x"}, // not a deletion
		{store.Change{Document: "\x02"}, "\x02\x02"},
		{store.Change{Document: "\x00\xff"}, "\x02\x00\xff"},
		{store.Change{Document: long}, "\x02" + long},
	} {
		if got := tc.c.String(); got != tc.msg {
			t.Errorf("%+v.String() = %q, want %q", tc.c, got, tc.msg)
		}
		if got := store.ParseChange(tc.msg); got != tc.c {
			t.Errorf("ParseChange(%q) = %+v, want %+v", tc.msg, got, tc.c)
		}
	}
}

// A Change with Document set is a document's announcement whatever else
// it holds: String encodes the document only.
func TestChangeDocumentWins(t *testing.T) {
	t.Parallel()
	c := store.Change{ID: "visitor-1", Deleted: true, Document: "doc"}
	if got := store.ParseChange(c.String()); got != (store.Change{Document: "doc"}) {
		t.Errorf("ParseChange(%q) = %+v, want the document only", c.String(), got)
	}
}

// Messages that no store sends still read as a Change that gives them
// back, and never as a document without a name.
func TestParseChangeOdd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		msg  string
		want store.Change
	}{
		{"", store.Change{}},
		{"\x02", store.Change{ID: "\x02"}},
		{"\x01", store.Change{Deleted: true}},
		{"\x01\x02x", store.Change{ID: "\x02x", Deleted: true}},
	} {
		got := store.ParseChange(tc.msg)
		if got != tc.want {
			t.Errorf("ParseChange(%q) = %+v, want %+v", tc.msg, got, tc.want)
		}
		if s := got.String(); s != tc.msg {
			t.Errorf("ParseChange(%q).String() = %q", tc.msg, s)
		}
	}
}

// FuzzParseChange checks both round trips: every message reads as a
// Change that gives it back, and every Change a store announces (a valid
// profile id, or a document's name) reads back as itself.
func FuzzParseChange(f *testing.F) {
	for _, s := range []string{"", "visitor-1", "\x01visitor-1", "\x02x/y", "\x02", "\x02\x01", "\x01\x02"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		c := store.ParseChange(msg)
		if got := c.String(); got != msg {
			t.Fatalf("ParseChange(%q) = %+v, whose String is %q", msg, c, got)
		}
		if c.Document != "" && (c.ID != "" || c.Deleted) {
			t.Fatalf("ParseChange(%q) = %+v: a document with a profile", msg, c)
		}
		// msg as a document's name, and as a profile's id.
		if msg != "" && len(msg) <= store.MaxLeaseName {
			d := store.Change{Document: msg}
			if got := store.ParseChange(d.String()); got != d {
				t.Fatalf("document %q: read back as %+v", msg, got)
			}
		}
		if store.ValidateID(msg) == nil {
			for _, del := range []bool{false, true} {
				p := store.Change{ID: msg, Deleted: del}
				if got := store.ParseChange(p.String()); got != p {
					t.Fatalf("%+v: read back as %+v", p, got)
				}
			}
		}
	})
}
