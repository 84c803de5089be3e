package site

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// segmentsJSON defines the shop's segments, highest priority first.
// Start the shop with -segments FILE to use (and watch) another file.
//
//go:embed segments.json
var segmentsJSON []byte

// slotsJSON declares the places of the pages whose content depends on the
// visitor: the home page hero, by segment, and a promotion under an A/B
// test whose goal is a purchase.
//
//go:embed slots.json
var slotsJSON []byte

// plugins returns the shop's rule plugins: likelyToBuy, from the
// recommendation model, with arguments {"item": ID, "confidence": C}.
func plugins(m func() *assoc.Model) *rules.Registry {
	reg := rules.NewRegistry()
	reg.Register("likelyToBuy", func(args json.RawMessage) (rules.Rule, error) {
		var a struct {
			Item       string  `json:"item"`
			Confidence float64 `json:"confidence"`
		}
		if err := json.Unmarshal(args, &a); err != nil {
			return nil, err
		}
		if a.Item == "" {
			return nil, errors.New("item: required")
		}
		if a.Confidence <= 0 || a.Confidence > 1 {
			return nil, fmt.Errorf("confidence: %v, want a number in (0, 1]", a.Confidence)
		}
		return likelyToBuy{model: m, item: a.Item, min: a.Confidence}, nil
	})
	return reg
}

// likelyToBuy matches the visitors likely to buy item: the best
// association rule that predicts item from what they bought (see
// assoc.Model.Likelihood) has a confidence of at least min. Visitors who
// bought item already do not match. It is a rules.Explainer, so that the
// dashboard and /_tailor/me show the confidence found, the one wanted and
// the items it was found from, rather than only "match".
type likelyToBuy struct {
	// model returns the current model: it is rebuilt as orders come.
	model func() *assoc.Model
	item  string
	min   float64
}

// Dependencies says that likelyToBuy reads no request fact, and that
// time alone does not change its answer.
func (l likelyToBuy) Dependencies() rules.Dependencies { return rules.Dependencies{} }

// Touches says that of the profile, likelyToBuy reads the purchases
// only: a page view does not make the engine ask again. The model it
// consults changes as orders come: the site's follower tells the engine
// (rules.Engine.Invalidate).
func (l likelyToBuy) Touches() store.Touch { return store.TouchPurchases }

func (l likelyToBuy) Match(in *rules.Input) (bool, error) {
	ok, _ := l.eval(in)
	return ok, nil
}

func (l likelyToBuy) Explain(in *rules.Input) (bool, []rules.Clause, error) {
	ok, c := l.eval(in)
	return ok, []rules.Clause{c}, nil
}

// eval decides, and says what it looked at in a clause.
func (l likelyToBuy) eval(in *rules.Input) (bool, rules.Clause) {
	c := rules.Clause{Rule: "likelyToBuy", Path: "confidence of buying " + l.item, Op: ">=",
		Expected: strconv.FormatFloat(l.min, 'f', -1, 64), Actual: "null"}
	p := in.Profile
	switch {
	case p == nil:
		c.Path += " (visitor not tracked)"
		return false, c
	case p.Purchases.Items[l.item] > 0:
		c.Path, c.Op, c.Expected, c.Actual = "bought "+l.item+" already", "=", "false", "true"
		return false, c
	}
	// Sorted, so that the pairs Likelihood tries are always the same.
	bought := slices.Sorted(maps.Keys(p.Purchases.Items))
	r, found := l.model().Likelihood(bought, l.item)
	if !found {
		if len(bought) > 0 {
			c.Path += ": no rule predicts it from " + strings.Join(bought, ", ")
		}
		return false, c
	}
	c.Path += " from " + strings.Join(r.If, " + ")
	c.Actual = strconv.FormatFloat(r.Confidence, 'f', 2, 64)
	c.Result = r.Confidence >= l.min
	return c.Result, c
}
