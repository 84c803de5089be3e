package quality_test

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/internal/quality"
	"github.com/tailorhq/tailor/internal/testenv"
)

// tiny is a market-basket ARFF with what LoadARFF must handle: comments,
// blank lines, quoted names with blanks and escapes, attributes that are
// not items, keywords in any case, quoted values.
const tiny = `% A comment line.
@RELATION 'tiny shop'

@attribute 'bread and cake' { t}
@attribute "milk" {t}   % trailing comment
@Attribute tea {'t'}
@attribute 'it\'s 100%' {t}
@attribute price numeric
@attribute 'total' { low, high} % low < 100
@data
t,?,?,?,1.5,low
?, t , ? , t ,2,high

% a blank line and a comment between rows
'?','t',t,?,3,"high"
?,?,?,?,0,low
`

func TestLoadARFF(t *testing.T) {
	d, err := quality.LoadARFF(strings.NewReader(tiny))
	if err != nil {
		t.Fatal(err)
	}
	want := quality.Dataset{Name: "tiny shop", Baskets: [][]string{
		{"bread and cake"},
		{"it's 100%", "milk"},
		{"milk", "tea"},
		{},
	}}
	if d.Name != want.Name || len(d.Baskets) != len(want.Baskets) {
		t.Fatalf("got %q with %d baskets, want %q with %d", d.Name, len(d.Baskets), want.Name, len(want.Baskets))
	}
	for i := range want.Baskets {
		if !slices.Equal(d.Baskets[i], want.Baskets[i]) {
			t.Errorf("basket %d: %q, want %q", i, d.Baskets[i], want.Baskets[i])
		}
	}
	if st := d.Stats(); st != (quality.Stats{Baskets: 4, Items: 4, Mean: 5.0 / 4, Max: 2}) {
		t.Errorf("stats %+v", st)
	}
}

func TestLoadARFFErrors(t *testing.T) {
	const head = "@relation r\n@attribute a {t}\n@attribute b {t}\n@attribute n numeric\n@data\n"
	for _, tc := range []struct {
		name, in string
		line     int
		msg      string
	}{
		{"too few values", head + "t,?,1\nt,?\n", 7, "2 values, want one per attribute (3)"},
		{"too many values", head + "t,?,1,2\n", 6, "4 values"},
		{"bad item value", head + "t,f,1\n", 6, `value "f" of attribute "b" (column 2), want t or ?`},
		{"sparse row", head + "{0 t, 2 5}\n", 6, "sparse data rows"},
		{"unterminated quote", head + "'t,?,1\n", 6, "unterminated ' quote"},
		{"text after a quoted value", head + "'t' x,?,1\n", 6, `"x,?,1" after the quoted value "t"`},
		{"row before @data", "@relation r\n@attribute a {t}\nt\n@data\n", 3, `"t" before @data`},
		{"unknown keyword", "@relation r\n@attribut a {t}\n@data\n", 2, "unknown keyword @attribut"},
		{"no @data", "@relation r\n@attribute a {t}\n", 2, "no @data section"},
		{"no item attribute", "@relation r\n@attribute n numeric\n@data\n", 3, "without any {t} attribute"},
		{"item declared twice", "@relation r\n@attribute a {t}\n% x\n@attribute 'a' {t}\n@data\n", 4, `"a" declared twice (first on line 2)`},
		{"unclosed nominal", "@relation r\n@attribute a {t\n@data\n", 2, "lack a closing }"},
		{"relational", "@relation r\n@attribute a {t}\n@attribute bag relational\n@data\n", 3, "relational attributes are not supported"},
		{"unknown type", "@relation r\n@attribute a {t}\n@attribute b float\n@data\n", 3, `unknown type "float"`},
		{"no type", "@relation r\n@attribute a\n@data\n", 2, `"a" without a type`},
		{"no name", "@relation r\n@attribute ''{t}\n@data\n", 2, "without a name"},
		{"two relations", "@relation r\n@relation s\n", 2, "a second @relation"},
		{"text after @data", "@relation r\n@attribute a {t}\n@data t\n", 3, `unexpected "t" after @data`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := quality.LoadARFF(strings.NewReader(tc.in))
			var pe *quality.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("error %q, want line %d and %q", err, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "arff: line ") {
				t.Errorf("error %q does not say the line", err)
			}
		})
	}
}

func TestWriteARFF(t *testing.T) {
	d := quality.Dataset{Name: "x 'y'", Baskets: [][]string{{"a b", "c,d"}, nil, {"e'f", "g\\h", "tab\there"}, {"a b"}}}
	var buf bytes.Buffer
	if err := quality.WriteARFF(&buf, d); err != nil {
		t.Fatal(err)
	}
	back, err := quality.LoadARFF(&buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(back, d) {
		t.Errorf("read back %q, want %q", back, d)
	}
}

// supermarket loads Weka's supermarket.arff, or skips t (fails it with
// TAILOR_INTEGRATION=require) when the file is not found.
func supermarket(t testing.TB) quality.Dataset {
	t.Helper()
	path, err := quality.FindSupermarket()
	if err != nil {
		testenv.Missing(t, err.Error())
	}
	d, err := quality.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSupermarket checks the loader on the real file against figures
// counted independently (with a few lines of Python over the same file).
func TestSupermarket(t *testing.T) {
	d := supermarket(t)
	st := d.Stats()
	t.Logf("supermarket.arff: %d baskets, %d items that occur, %.4f items per basket (%d in all), at most %d",
		st.Baskets, st.Items, st.Mean, int(st.Mean*float64(st.Baskets)+0.5), st.Max)
	if st.Baskets != 4627 || st.Items != 122 || st.Mean != 85762.0/4627 || st.Max != 48 {
		t.Errorf("stats %+v, want 4627 baskets, 122 items, 85762 items in all, at most 48", st)
	}
	bf := quality.NewBruteForce(d.Baskets)
	for _, c := range []struct {
		items []string
		want  int
	}{
		{[]string{"bread and cake"}, 3330},
		{[]string{"fruit"}, 2962},
		{[]string{"bread and cake", "milk-cream"}, 2337},
		{[]string{"bread and cake", "milk-cream", "fruit"}, 1684},
	} {
		if got := bf.Count(c.items...); got != c.want {
			t.Errorf("Count(%q) = %d, want %d", c.items, got, c.want)
		}
	}
	if top := bf.Items()[:2]; !slices.Equal(top, []string{"bread and cake", "fruit"}) {
		t.Errorf("most frequent items %q", top)
	}
}

// TestFindSupermarket checks that TAILOR_SUPERMARKET decides alone, and
// what the error says.
func TestFindSupermarket(t *testing.T) {
	missing := t.TempDir() + "/none.arff"
	t.Setenv(quality.SupermarketEnv, missing)
	if p := quality.SupermarketPaths(); !slices.Equal(p, []string{missing}) {
		t.Errorf("paths %q with %s set", p, quality.SupermarketEnv)
	}
	_, err := quality.FindSupermarket()
	if !errors.Is(err, quality.ErrNoSupermarket) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "apt-get download weka") {
		t.Errorf("error %v", err)
	}
	present := t.TempDir() + "/s.arff"
	if err := os.WriteFile(present, []byte(tiny), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(quality.SupermarketEnv, present)
	if p, err := quality.FindSupermarket(); p != present || err != nil {
		t.Errorf("found %q, %v; want %q", p, err, present)
	}
}

func FuzzLoadARFF(f *testing.F) {
	f.Add(tiny)
	f.Add("@relation r\n@attribute a {t}\n@attribute 'b c' {t}\n@data\nt,t\n?,t\n")
	f.Add("@relation r\n@attribute a {t}\n@data\n{0 t}\n")
	f.Add("@relation 'r\\'s'\n@attribute \"a\\\"\" {t} % c\n@data\n't'\n")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := quality.LoadARFF(strings.NewReader(in))
		if err != nil {
			var pe *quality.ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a *ParseError with a line", err)
			}
			return
		}
		for i, b := range d.Baskets {
			if !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b) || slices.Contains(b, "") {
				t.Fatalf("basket %d is not a set of ids: %q", i, b)
			}
		}
		if d.Stats().Items == 0 {
			return // nothing to write an attribute for
		}
		var buf bytes.Buffer
		if err := quality.WriteARFF(&buf, d); err != nil {
			t.Fatal(err)
		}
		back, err := quality.LoadARFF(&buf)
		if err != nil {
			t.Fatalf("reading what WriteARFF wrote: %v\n%s", err, buf.String())
		}
		if d.Name == "" {
			d.Name = "baskets"
		}
		if !reflect.DeepEqual(back, d) {
			t.Fatalf("read back %q, want %q", back, d)
		}
	})
}
