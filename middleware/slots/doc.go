// Package slots swaps the content of the places of a page (a hero banner,
// a call to action) per visitor, and runs A/B/n experiments on them.
//
// # Slots
//
// A Slot has variants, each shown to the visitors of some segments (and,
// optionally, who match a JSON condition), with a priority, and a default.
// Slots are declared in Go (NewSet) or in a JSON file (Parse), whose
// problems are all reported with their file, line, column and JSON
// Pointer; either gives a Set. An Engine holds the current Set, as
// rules.Engine holds segments: Engine.Pick shows the variant of highest
// priority that matches the visitor, else the default, and Engine.Watch
// reloads the file when it changes, while the site runs: templates built
// on the engine show the new slots on the next page, and a bad file is
// refused (Engine.Status and the engine's Logger say why).
//
// # Templates
//
// Engine.FuncMap gives templates the slot, slotAttrs and renderSlot
// functions. A variant's fields are the site owner's content: templates
// show them like any other value, escaped by html/template.
//
//	{{with slot .Request "hero"}}
//	  <section {{.Attrs}}><h1>{{.Fields.title}}</h1></section>
//	{{end}}
//
// # Experiments
//
// A slot may run an Experiment (rules/experiment) between some of its
// variants, optionally for the visitors of one segment. Assignment is
// deterministic, from the visitor id and the experiment's key, and sticky:
// the visitor keeps the variant they were exposed to. Pick records the
// exposure as an experiment.ExposureEvent with the properties experiment,
// variant and segment (the results segment, see Experiment.Breakdown), the
// first time a visitor is shown a variant, not on every page: a visitor
// already exposed to the same variant records nothing. The same event sets
// the trait TraitPrefix + key, {"variant": ..., "segment": ...,
// "goals": {...}}, with the counts of the goal events at exposure, so that
// the visitor's variant and conversion are known beyond the ring of recent
// events. The previous variant is that of the latest exposure event in the
// ring of recent events, else that of the trait.
//
// A conversion is a goal event recorded after the exposure: any event
// whose name is one of the experiment's goals (Visitor.Track or Purchase
// for "purchase").
//
// # Results
//
// A Tally counts, per experiment, segment and variant, the exposed
// visitors and those who converted, by reading every stored profile's
// exposure traits (the store must implement store.Ranger). Counting the
// store, rather than events as they happen in one process, gives the same
// exact counts on every instance of a site, and after restarts. A Tally is
// an admin.ExperimentSource for the dashboard's experiments page, and
// updates the experiments' bandits.
package slots
