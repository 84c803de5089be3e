package cookie

import (
	"net/http"
	"strings"
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

// validValue, which tests eight bytes at a time, finds every byte that
// net/http refuses, at every place in a value, next to any other byte.
func TestValidValueBytes(t *testing.T) {
	valid := func(b byte) bool { return 0x20 <= b && b < 0x7f && b != '"' && b != ';' && b != '\\' }
	for n := 1; n <= 20; n++ {
		for i := range n {
			for b := range 256 {
				for _, next := range []byte{'a', 0x00, 0x7f, 0xff, 0x20, 0x21} {
					v := []byte(strings.Repeat("A", n))
					v[i] = byte(b)
					if i+1 < n {
						v[i+1] = next
					}
					want := valid(byte(b)) && (i+1 >= n || valid(next))
					if got := validValue(string(v)); got != want {
						t.Fatalf("validValue(%q) = %v, want %v", v, got, want)
					}
				}
			}
		}
	}
}
