package cookie

import (
	"net/http"
	"testing"
)

// valueCases are Cookie headers, each with the value of cookie "tailor"
// that (*http.Request).Cookie finds in it.
var valueCases = [][]string{
	{"tailor=abc"},
	{"a=1; tailor=abc; b=2"},
	{"  tailor = abc ;"},
	{`tailor="abc"`},
	{`tailor="`},
	{"tailor=a\\b; tailor=second"},
	{"tailor=a\"b"},
	{"tailors=x; xtailor=y"},
	{"a=1", "tailor=in-the-second-line"},
	{"tailor"},
	{"tailor="},
	{";;tailor=\x7fbad; tailor=good"},
	{""},
}

func TestValueAsNetHTTP(t *testing.T) {
	for _, lines := range valueCases {
		checkValue(t, lines)
	}
}

func FuzzValue(f *testing.F) {
	for _, lines := range valueCases {
		f.Add(lines[0])
	}
	f.Fuzz(func(t *testing.T, line string) { checkValue(t, []string{line}) })
}

func checkValue(t *testing.T, lines []string) {
	t.Helper()
	r, _ := http.NewRequest("GET", "http://example.com/", nil)
	r.Header["Cookie"] = lines
	want, err := r.Cookie("tailor")
	got, ok := Value(r.Header, "tailor")
	if ok != (err == nil) || ok && got != want.Value {
		t.Errorf("Value(%q) = %q, %v; (*http.Request).Cookie: %+v, %v", lines, got, ok, want, err)
	}
	if n := testing.AllocsPerRun(10, func() { Value(r.Header, "tailor") }); n != 0 {
		t.Errorf("Value(%q) allocates %v times", lines, n)
	}
}
