package site

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
)

// segmentsJSON defines the shop's segments, highest priority first; the
// home page hero shows the variant of the first one the visitor is in.
// Start the shop with -segments FILE to use (and watch) another file.
//
//go:embed segments.json
var segmentsJSON []byte

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
		// The model is rebuilt periodically: ask for the current one.
		return rules.RuleFunc(func(in *rules.Input) (bool, error) {
			return assoc.LikelyToBuy(m(), a.Item, a.Confidence).Match(in)
		}), nil
	})
	return reg
}

// heroVariant picks the hero for a visitor's segments.
func heroVariant(in func(string) bool) string {
	switch {
	case in("customer"):
		return "thank-you"
	case in("red-sox-fan"):
		return "red-sox"
	case in("returning"):
		return "welcome-back"
	}
	return "welcome"
}
