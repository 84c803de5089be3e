package assoc

import (
	"fmt"

	"github.com/tailorhq/tailor/rules"
)

// LikelyToBuy returns a segment rule matching visitors likely to buy item:
// the best rule predicting item from what they bought has a confidence of
// at least minConfidence. Visitors who bought item already do not match.
func LikelyToBuy(m *Model, item string, minConfidence float64) rules.Rule {
	return likely{m: m, item: item, min: minConfidence}
}

type likely struct {
	m    *Model
	item string
	min  float64
}

func (l likely) Match(in *rules.Input) (bool, error) {
	if in.Profile == nil || in.Profile.Purchases.Items[l.item] > 0 {
		return false, nil
	}
	bought := make([]string, 0, len(in.Profile.Purchases.Items))
	for it := range in.Profile.Purchases.Items {
		bought = append(bought, it)
	}
	r, ok := l.m.Likelihood(bought, l.item)
	return ok && r.Confidence >= l.min, nil
}

func (l likely) String() string {
	return fmt.Sprintf("likely to buy %s (confidence ≥ %.2f)", l.item, l.min)
}

// ChurnRiskAbove returns a segment rule matching visitors whose predicted
// churn risk (Predict) is at least min: buyers silent for long against their
// own usual gap between purchases. Visitors whose gap is unknown do not
// match.
func ChurnRiskAbove(min float64) rules.Rule {
	return rules.RuleFunc(func(in *rules.Input) (bool, error) {
		if in.Profile == nil {
			return false, nil
		}
		r := Predict(in.Profile, in.Now).ChurnRisk
		return r >= 0 && r >= min, nil
	})
}
