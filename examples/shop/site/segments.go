package site

import (
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
)

// Segments of the demo shop, highest priority first. The home page hero
// shows the variant of the first one the visitor is in.
func Segments(m *assoc.Model) []rules.Segment {
	return []rules.Segment{
		{Name: "customer", Description: "has bought something", Priority: 40, Rule: rules.Purchased(1)},
		{Name: "red-sox-fan", Description: "viewed Red Sox products at least twice", Priority: 30, Rule: rules.CategoryViews("red-sox", 2)},
		{Name: "returning", Description: "second visit or later", Priority: 20, Rule: rules.Visits(2)},
		{Name: "watercolourist", Description: "interested in watercolours", Priority: 10, Rule: rules.CategoryViews("watercolours", 1)},
		{Name: "deadhead", Description: "interested in Grateful Dead records", Priority: 10, Rule: rules.CategoryViews("grateful-dead", 1)},
		{Name: "likely-potato-head", Description: "likely to buy the Red Sox Mr. Potato Head (people who bought what they bought did)", Priority: 5,
			Rule: assoc.LikelyToBuy(m, "red-sox-potato-head", 0.5)},
	}
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
