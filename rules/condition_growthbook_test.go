package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// growthbookCases is GrowthBook's published evalCondition suite, spec
// 0.7.1, copied verbatim into testdata/growthbook (see the README there for
// where it comes from): the reference for the default semantics, those of
// GrowthBook's JavaScript SDK.
const growthbookCases = "testdata/growthbook/evalCondition-spec0.7.1.json"

// growthbookCase is one evalCondition case: a name, a condition, a document
// (GrowthBook's attributes), the expected result and, for $inGroup and
// $notInGroup, the saved groups.
type growthbookCase struct {
	name      string
	cond, doc []byte
	want      bool
	groups    map[string][]any
}

// opts returns the options that the case needs: its saved groups, if any.
func (c growthbookCase) opts(extra ...ConditionOption) []ConditionOption {
	if c.groups != nil {
		extra = append(extra, WithSavedGroups(c.groups))
	}
	return extra
}

// loadGrowthBookCases reads a file of evalCondition cases in the layout of
// GrowthBook's cases.json: an array of [name, condition, attributes,
// expected] or [name, condition, attributes, expected, savedGroups].
func loadGrowthBookCases(tb testing.TB, file string) []growthbookCase {
	tb.Helper()
	data, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		tb.Fatal(err)
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	cases := make([]growthbookCase, 0, len(rows))
	for i, row := range rows {
		c, err := parseGrowthBookCase(row)
		if err != nil {
			tb.Fatalf("%s: case %d: %v", file, i, err)
		}
		cases = append(cases, c)
	}
	return cases
}

func parseGrowthBookCase(row []json.RawMessage) (growthbookCase, error) {
	var c growthbookCase
	if len(row) != 4 && len(row) != 5 {
		return c, fmt.Errorf("%d elements, want 4 or 5", len(row))
	}
	if err := json.Unmarshal(row[0], &c.name); err != nil {
		return c, fmt.Errorf("name: %v", err)
	}
	// Compact so that failures print on one line; the JSON is unchanged.
	var b bytes.Buffer
	if err := json.Compact(&b, row[1]); err != nil {
		return c, fmt.Errorf("%s: condition: %v", c.name, err)
	}
	c.cond = bytes.Clone(b.Bytes())
	b.Reset()
	if err := json.Compact(&b, row[2]); err != nil {
		return c, fmt.Errorf("%s: attributes: %v", c.name, err)
	}
	c.doc = bytes.Clone(b.Bytes())
	if err := json.Unmarshal(row[3], &c.want); err != nil {
		return c, fmt.Errorf("%s: expected: %v", c.name, err)
	}
	if len(row) == 5 {
		if err := json.Unmarshal(row[4], &c.groups); err != nil {
			return c, fmt.Errorf("%s: saved groups: %v", c.name, err)
		}
	}
	return c, nil
}

// runGrowthBookCases evaluates every case with opts and expects exactly the
// published result.
func runGrowthBookCases(t *testing.T, file string, want int, opts ...ConditionOption) {
	cases := loadGrowthBookCases(t, file)
	if len(cases) != want {
		t.Fatalf("%s: %d cases, want %d", file, len(cases), want)
	}
	for i, tc := range cases {
		got, err := EvalCondition(tc.cond, tc.doc, tc.opts(opts...)...)
		if err != nil {
			t.Errorf("case %d %q: EvalCondition(%s, %s): %v", i, tc.name, tc.cond, tc.doc, err)
			continue
		}
		if got != tc.want {
			t.Errorf("case %d %q: EvalCondition(%s, %s) = %v, want %v", i, tc.name, tc.cond, tc.doc, got, tc.want)
		}
	}
}

// TestConditionGrowthBookCases: the default semantics pass every case of
// GrowthBook's evalCondition suite, spec 0.7.1.
func TestConditionGrowthBookCases(t *testing.T) {
	t.Parallel()
	runGrowthBookCases(t, growthbookCases, 248)
}
