// Command baskets measures the association rules of rules/assoc against
// the yardstick of internal/quality, on real and synthetic baskets:
//
//	go run ./examples/baskets [-supermarket path] [-k 10] [-seed 1] [-sets supermarket,dense,tastes,shop] [-baskets n]
//
// For each data set it prints a row of a Markdown table: the set's shape
// (baskets, items that occur, mean items per basket); the hit rate@k and
// recall@k of the popularity baseline, of the item-kNN baseline and of
// tailor's model with its default Config (quality.Evaluate: learnt on 80%
// of the baskets, tested on the other 20%), and the share of tailor's
// recommendations that a rule explains; then the exactness check of a
// model without thresholds learnt on every basket (quality.CheckRules
// over the 30 most frequent items, their pairs, and 100 other items and
// 100 other pairs): the rules checked, the share given exactly, and the
// worst relative error of a figure (1 for a missing rule).
//
// The data sets are Weka's supermarket.arff (-supermarket, else found as
// quality.FindSupermarket says; skipped with a note when absent) and the
// synthetic dense, tastes and shop sets of package quality (-baskets sets
// their size, the orders drawn for shop; 0 means their defaults). Progress goes to standard error.
// With today's defaults a run takes a few minutes, most of it the model
// learning the dense set.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tailorhq/tailor/internal/quality"
	"github.com/tailorhq/tailor/rules/assoc"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "baskets:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	supermarket string
	sets        []string
	k           int
	seed        uint64
	baskets     int
	top, sample int
}

var allSets = []string{"supermarket", "dense", "tastes", "shop"}

func parse(args []string, errw io.Writer) (config, error) {
	var c config
	var sets string
	fs := flag.NewFlagSet("baskets", flag.ContinueOnError)
	fs.SetOutput(errw)
	fs.StringVar(&c.supermarket, "supermarket", "", "the `path` of Weka's supermarket.arff (default: where quality.FindSupermarket looks)")
	fs.StringVar(&sets, "sets", strings.Join(allSets, ","), "the data sets to measure, comma-separated")
	fs.IntVar(&c.k, "k", 10, "recommendations per test basket")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the synthetic data, the split and the hidden items")
	fs.IntVar(&c.baskets, "baskets", 0, "baskets of each synthetic set (0: the set's default)")
	fs.IntVar(&c.top, "top", 30, "exactness: the most frequent items checked, with all their pairs")
	fs.IntVar(&c.sample, "sample", 100, "exactness: the other items, and the other pairs, checked")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(sets, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allSets, s) {
			return c, fmt.Errorf("-sets: unknown data set %q (want some of %s)", s, strings.Join(allSets, ", "))
		}
		c.sets = append(c.sets, s)
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case len(c.sets) == 0:
		return c, errors.New("-sets names no data set")
	case c.k < 1 || c.baskets < 0 || c.top < 0 || c.sample < 0:
		return c, errors.New("-k must be at least 1, -baskets, -top and -sample at least 0")
	}
	return c, nil
}

// row is the measure of one data set.
type row struct {
	d                 quality.Dataset
	st                quality.Stats
	pop, knn, tl      quality.Result
	check             quality.Check
	evalTook, chkTook time.Duration
}

func run(args []string, out, errw io.Writer) error {
	c, err := parse(args, errw)
	if err != nil {
		return err
	}
	var rows []row
	for _, name := range c.sets {
		d, ok, err := c.load(name, errw)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		fmt.Fprintf(errw, "%s: %d baskets\n", d.Name, len(d.Baskets))
		rows = append(rows, c.measure(d, errw))
	}
	if len(rows) == 0 {
		return errors.New("no data set to measure")
	}
	c.print(out, rows)
	return nil
}

// load returns the data set name; ok is false when it is skipped.
func (c config) load(name string, errw io.Writer) (d quality.Dataset, ok bool, err error) {
	size := func(def int) int {
		if c.baskets > 0 {
			return c.baskets
		}
		return def
	}
	switch name {
	case "supermarket":
		path := c.supermarket
		if path == "" {
			if path, err = quality.FindSupermarket(); err != nil {
				fmt.Fprintf(errw, "supermarket: skipped: %v\n", err)
				return d, false, nil
			}
		}
		d, err = quality.LoadFile(path)
		return d, err == nil, err
	case "dense":
		return quality.DenseN(c.seed, size(quality.DenseBaskets)), true, nil
	case "tastes":
		return quality.TastesN(c.seed, size(quality.TastesBaskets)), true, nil
	case "shop":
		return quality.ShopN(c.seed, size(quality.ShopBaskets)), true, nil
	}
	return d, false, fmt.Errorf("unknown data set %q", name)
}

func (c config) measure(d quality.Dataset, errw io.Writer) row {
	r := row{d: d, st: d.Stats()}
	start := time.Now()
	train, test := quality.Split(d, 0.2, c.seed)
	r.pop = quality.Evaluate(train, test, &quality.Popularity{}, c.k, c.seed)
	r.knn = quality.Evaluate(train, test, &quality.ItemKNN{}, c.k, c.seed)
	r.tl = quality.Evaluate(train, test, &quality.Tailor{}, c.k, c.seed)
	r.evalTook = time.Since(start)
	fmt.Fprintf(errw, "  recommendations measured in %v\n", r.evalTook.Round(time.Millisecond))

	start = time.Now()
	m := assoc.New(assoc.Config{MinSupport: -1, MinConfidence: -1, MinLift: -1})
	for _, b := range d.Baskets {
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: b})
	}
	bf := quality.NewBruteForce(d.Baskets)
	r.check = quality.CheckRules(m, bf, quality.Antecedents(bf, c.top, c.sample, c.seed))
	r.chkTook = time.Since(start)
	fmt.Fprintf(errw, "  rules checked in %v: %s\n", r.chkTook.Round(time.Millisecond), r.check)
	return r
}

func (c config) print(out io.Writer, rows []row) {
	fmt.Fprintf(out, "| data set | baskets | items | mean basket | popularity | item-kNN | tailor | tailor by a rule | rules checked | exact | worst error |\n")
	fmt.Fprintf(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	pct := func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
	hr := func(r quality.Result) string { return pct(r.HitRate) + " / " + pct(r.Recall) }
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %d | %d | %.1f | %s | %s | %s | %s | %d | %s | %.3g |\n",
			r.d.Name, r.st.Baskets, r.st.Items, r.st.Mean, hr(r.pop), hr(r.knn), hr(r.tl), pct(r.tl.Explained),
			r.check.Rules, fmt.Sprintf("%.2f%%", 100*r.check.ExactShare()), r.check.Worst)
	}
	fmt.Fprintf(out, "\nRecommendations: hit rate@%d / recall@%d over the baskets of at least two items of a 20%% test split (seed %d); "+
		"\"tailor by a rule\" is the share of tailor's recommendations that came with a rule rather than popularity. "+
		"Exactness: the rules of the %d most frequent items, their pairs, %d other items and %d other pairs, from a model without thresholds learnt on every basket, "+
		"against brute-force counts; the worst error is the largest relative error of a count, support, confidence or lift (1 for a missing rule).\n",
		c.k, c.k, c.seed, c.top, c.sample, c.sample)
	for _, r := range rows {
		if invalid := r.pop.Invalid + r.knn.Invalid + r.tl.Invalid; invalid > 0 {
			fmt.Fprintf(out, "\n%s: %d recommendations broke the contract (a visible item, a repeat, more than k).\n", r.d.Name, invalid)
		}
	}
}
