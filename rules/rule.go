package rules

import (
	"encoding/json"
	"time"

	"github.com/tailorhq/tailor/store"
)

// A Rule decides whether a visitor belongs to a segment.
//
// Match must be pure and safe for concurrent use: it reads the input and
// returns the same answer for the same input. An error means the rule could
// not be evaluated for this input (a trait of the wrong type, say); the
// engine treats it as "no match" and counts it, and never fails a request.
type Rule interface {
	Match(in *Input) (bool, error)
}

// RuleFunc adapts a function to a Rule.
type RuleFunc func(in *Input) (bool, error)

// Match calls f.
func (f RuleFunc) Match(in *Input) (bool, error) { return f(in) }

// Input is what a rule sees: the visitor's profile, the facts of the current
// request, and the time.
type Input struct {
	// Profile is the visitor's profile, or nil when the visitor is not
	// tracked (a crawler, or no consent): only Request facts are known.
	Profile *store.Profile
	// Request holds facts taken from the current request alone.
	Request Facts
	// Now is the time of evaluation.
	Now time.Time

	doc []byte
}

// Facts are what the current request tells about the visitor, without any
// stored history. They are known even for visitors who are not tracked.
type Facts struct {
	Path     string `json:"path,omitempty"`
	Referrer string `json:"referrer,omitempty"` // host of an external referrer
	Source   string `json:"utmSource,omitempty"`
	Medium   string `json:"utmMedium,omitempty"`
	Campaign string `json:"utmCampaign,omitempty"`
	Device   string `json:"device,omitempty"`  // "desktop", "mobile", "tablet" or "bot"
	Country  string `json:"country,omitempty"` // from the configured geo header
	// New is true on a visitor's first request: no valid cookie came with it.
	New bool `json:"new"`
}

// Document returns the profile rendered as JSON, the document that
// conditions are evaluated against; "null" when there is no profile. It is
// rendered once per Input.
func (in *Input) Document() []byte {
	if in.doc == nil {
		if in.Profile == nil {
			in.doc = []byte("null")
		} else if b, err := json.Marshal(in.Profile); err == nil {
			in.doc = b
		} else {
			in.doc = []byte("null")
		}
	}
	return in.doc
}
