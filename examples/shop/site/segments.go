package site

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
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
		// The model is rebuilt periodically: ask for the current one.
		return rules.RuleFunc(func(in *rules.Input) (bool, error) {
			return assoc.LikelyToBuy(m(), a.Item, a.Confidence).Match(in)
		}), nil
	})
	return reg
}
