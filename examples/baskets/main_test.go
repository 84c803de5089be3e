package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/internal/quality"
)

// TestRun measures every data set, small: a tiny ARFF file in place of
// supermarket.arff, and 300 baskets of each synthetic set.
func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.arff")
	var arff bytes.Buffer
	if err := quality.WriteARFF(&arff, quality.Dataset{Name: "tiny", Baskets: quality.TastesN(2, 200).Baskets}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, arff.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errw bytes.Buffer
	if err := run([]string{"-supermarket", path, "-baskets", "300", "-k", "5", "-seed", "3"}, &out, &errw); err != nil {
		t.Fatalf("run: %v\n%s", err, errw.String())
	}
	report := out.String()
	t.Logf("report:\n%s\nprogress:\n%s", report, errw.String())
	pct := `\d+\.\d%`
	hr := pct + ` / ` + pct
	for _, want := range []string{
		`(?m)^\| data set \| baskets \| items \| mean basket \| popularity \| item-kNN \| tailor \| tailor by a rule \| rules checked \| exact \| worst error \|$`,
		`(?m)^\|---\|`,
		`(?m)^\| tiny \| 200 \| \d+ \| \d+\.\d \| ` + hr + ` \| ` + hr + ` \| ` + hr + ` \| ` + pct + ` \| [1-9]\d* \| \d+\.\d\d% \| [\d.e+-]+ \|$`,
		`(?m)^\| dense \| 300 \| \d{3} \| 1\d\.\d \| `,
		`(?m)^\| tastes \| 300 \| `,
		`(?m)^\| shop \| 2\d\d \| `,
		`hit rate@5 / recall@5 .* \(seed 3\)`,
	} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("report lacks %s", want)
		}
	}
	if strings.Contains(report, "broke the contract") {
		t.Errorf("a recommender broke the contract")
	}
}

func TestRunErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.arff")
	t.Setenv(quality.SupermarketEnv, missing)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-sets", "dense,nope"}, `unknown data set "nope"`},
		{[]string{"-sets", ","}, "names no data set"},
		{[]string{"-k", "0"}, "-k must be at least 1"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-sets", "supermarket"}, "no data set to measure"},
		{[]string{"-supermarket", missing, "-sets", "supermarket"}, "no such file"},
	} {
		var out, errw bytes.Buffer
		err := run(c.args, &out, &errw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%q): %v, want an error with %q", c.args, err, c.want)
		}
	}
	// The skipped set says why.
	var out, errw bytes.Buffer
	run([]string{"-sets", "supermarket"}, &out, &errw)
	if !strings.Contains(errw.String(), "supermarket: skipped: supermarket.arff not found in "+missing) {
		t.Errorf("progress: %s", errw.String())
	}
}
