// Package openfeature is an OpenFeature provider (github.com/open-feature/go-sdk)
// whose flags are tailor's behavioural segments: feature flags that target
// what visitors did (visited the pricing page twice this week, bought twice
// this year), not only the attributes a caller passes in.
//
// Import it with an alias beside the SDK's package of the same name:
//
//	import (
//		"github.com/open-feature/go-sdk/openfeature"
//		tailorof "github.com/tailorhq/tailor/middleware/openfeature"
//	)
//
//	provider, err := tailorof.NewProvider(tailorof.Config{
//		Personalizer: p,       // a *middleware.Personalizer
//		Slots:        engine,  // optional: a *slots.Engine
//		Flags:        flags,   // optional: tailorof.ParseFlagsFile("flags.json")
//	})
//	...
//	openfeature.SetProviderAndWait(provider)
//	client := openfeature.NewDefaultClient()
//
// # Flags
//
//   - "segment.<name>", a boolean: whether the visitor is in the segment.
//   - the name of a slot of Config.Slots, a string: the key of the variant
//     the visitor is shown, picked by slots.Engine.Pick as for the page
//     (the same choice, and the same exposure recorded for an experiment).
//   - the flags of a flags file (see ParseFlags): a typed value per
//     segment, in priority order, with a default. A flags file's key wins
//     over a slot of the same name.
//
// Flags live in a file, not in the store: a flag is read by code, so a new
// flag ships with the code that reads it, while who gets it is decided by
// segments, which marketers edit and publish through the store
// (middleware/definitions) without touching the file. SetFlags replaces
// the flags while the site runs.
//
// # Whom flags are evaluated for
//
// In a request wrapped by middleware.Personalizer.Handler, the visitor comes
// from the context.Context given to the client: pass the request's context.
// Elsewhere (a worker, another service), the evaluation context's targeting
// key names them: a visitor id (middleware.Visitor.ID) or "user:" followed by
// a user id; their stored profile is classified by the segments engine,
// without request facts (see middleware.Personalizer.StoredVisitor). A
// targeting key that differs from the request's visitor (its id, or
// "user:"+its user id) names someone else, read from the store. A targeting
// key without a stored profile is a visitor in no segment.
//
// # Resolution details
//
// The reason is TARGETING_MATCH when a segment decided the value (the
// visitor is in the flag's segment, a rule of the flags file matched, a slot
// variant matched), SPLIT when a slot's experiment assigned the variant,
// DEFAULT otherwise, and ERROR with an error code: FLAG_NOT_FOUND,
// TYPE_MISMATCH, TARGETING_KEY_MISSING (outside a request, without a
// targeting key), INVALID_CONTEXT (a targeting key that is no profile id) or
// GENERAL (the store failed). The variant is "in" or "out" for a segment
// flag, the slot's variant key, or the rule's variant ("default" for the
// default). The flag metadata holds "source" (flags, segment or slot),
// "subject" (request, stored or unknown), "segment" (the segment that
// decided), "explanation" (the clauses of its rule, one per line, as
// rules.Engine.Explain gives them: "pass pages[/pricing] within 7d = 2,
// want >= 2"; left out with Config.NoExplanation), and "experiment" and
// "arm" for a slot's experiment.
//
// # Events, tracking and hooks
//
// Once initialised (the SDK calls Init), the provider looks for reloads of
// the segments and slots every Config.PollInterval and announces each as a
// PROVIDER_CONFIGURATION_CHANGED event; SetFlags announces new flags.
// The SDK's Track records an event on the visitor, as Visitor.Track does
// (for a user without a stored profile, as Personalizer.TrackUser does).
// Hooks returns Config.Hooks.
package openfeature
