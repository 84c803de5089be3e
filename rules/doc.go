// Package rules sorts visitors into segments.
//
// A [Rule] looks at an [Input] — the visitor's profile, facts of the current
// request, the time — and says whether the visitor matches. A [Segment] names
// a rule, and an [Engine] evaluates an ordered set of segments, highest
// priority first, with exclusive groups.
//
// # Rules
//
// Built-in rules are Go constructors ([Purchased], [Visits], [CategoryViews],
// [EventCount], [And], [Or], [Not]); conditions written in JSON use the
// MongoDB-style operators of GrowthBook's targeting conditions, evaluated
// with [EvalCondition] over the profile rendered as JSON.
//
// # Evaluation never fails a request
//
// Rules are evaluated for every visitor, so a rule that cannot be evaluated
// (a trait of an unexpected type, say) is "no match", counted by
// [Engine.Errors], never an error page.
package rules
