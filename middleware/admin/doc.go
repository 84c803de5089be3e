// Package admin is tailor's dashboard: an http.Handler that shows a
// Personalizer's visitors, segments, experiments, rules and webhooks, and
// edits the site's segments and slots, for the people who run the site.
//
// # Use
//
//	dash, err := admin.New(admin.Config{
//		Personalizer: p, // a *middleware.Personalizer
//		Username:     "admin",
//		Password:     password,
//		Webhooks:     hooks, // optional: a *webhook.Dispatcher
//	})
//	...
//	root := http.NewServeMux()
//	root.Handle(admin.DefaultPrefix, dash)   // /_tailor/admin/
//	root.Handle("/", p.Handler(site))       // the site, personalised
//	...
//	defer dash.Close()
//
// Mount the dashboard outside Personalizer.Handler, so that its pages are not
// recorded as page views, and serve it over TLS.
//
// # Access
//
// New refuses to make a dashboard that anyone could open: it needs an
// authorizer, which is HTTP basic authentication (Config.Users, each with
// a Role; Config.Username and Password, an Editor), a function
// (Config.RoleOf, to use the site's own sessions and tell editors from
// viewers; Config.Authorize, which lets in viewers), or a bearer token
// (Config.BearerToken, a Viewer, for scripts that download exports);
// credentials are compared in constant time. Config.Insecure lets anyone
// in as an Editor, for development on your own machine: every page then
// says so in a red banner.
//
// A Viewer sees every page, without the forms that change anything, and
// its POST requests get 403. An Editor edits, publishes and restores the
// definitions (see Editor below); its name is who publications are by.
//
// Every request that changes anything is a POST, and passes
// http.CrossOriginProtection first: a request that the browser marks as
// coming from another site (Sec-Fetch-Site), or whose Origin is another
// host, gets 403 and changes nothing. No token is added: the browsers
// that run the dashboard send those headers (all since 2023), a token would
// add state to every form, and requests without them are not a browser's,
// so they are not a forgery. GET requests never change anything.
//
// Every response carries ContentSecurityPolicy (nothing loads from
// another origin: charts are SVG drawn on the server, the stylesheet, icon
// and the editor's script come from the dashboard itself, and no inline
// script runs), and forbids framing, caching and referrers. Every text
// shown is escaped.
//
// # Pages
//
//   - Overview: the Personalizer's counters (requests, new and returning
//     visitors, events, pending events, cache hit ratio, store and rule
//     errors), events per minute, and each segment's size over time.
//   - A segment: its definition, its size over time, sample members linking
//     to the inspector, and exports.
//   - Visitors: the inspector, by visitor id or user id (the user's own
//     profile, store.UserProfileID, or else the visitors who identified as
//     the user, searched among at most Config.SampleLimit profiles): the
//     profile with
//     pending events, segments with the explanation of every rule
//     (rules.Engine.Explain), predictions (rules/assoc.Predict), traits,
//     activity and recent events.
//   - Experiments: per experiment, segment and variant, visitors,
//     conversions, rate with its 95% interval and the probability of beating
//     the control (rules/experiment.Results), as a table and a bar chart. The
//     application provides the experiments and their counts with
//     Config.Experiments; a FileSource (slots.Tally) also shows the file
//     they were loaded from, when, and the last reload's errors.
//   - Rules: the engine's segments as their rules test them, where they were
//     loaded from and when, the last reload's errors, and the file itself.
//   - Webhooks: a webhook.Dispatcher's counters and delivery log.
//   - Definitions: the editor (below).
//
// # Editor
//
// With Config.Definitions (a *definitions.Definitions, which keeps the
// site's segments and slots as versioned documents in the store), the
// dashboard edits the site's one shared draft, under definitions/:
//
//   - the draft's segments, each edited with a form per built-in rule
//     (page visited, event count, recency, lifecycle, RFM, email
//     engagement, interest, trait, context, seasonal, due to buy…) or as
//     JSON, cloned and deleted; slots' variants likewise; each whole file as
//     JSON. JSON is checked as it is typed (static/editor.js posts it to
//     definitions/validate, which answers the problems with their file,
//     line, column and JSON Pointer); without the script, saving shows the
//     same problems. The draft keeps only what loads (definitions'
//     SaveDraft).
//   - test on a visitor: the draft's verdict for a visitor id, a user id or
//     "me" (the site's visitor cookie in the dashboard user's browser),
//     clause by clause, beside the published version's.
//   - backtest: a draft segment against the stored profiles (members now,
//     overlap with the published segments, sample members explained, size
//     over the last weeks), as a throttled pass that one instance runs at a
//     time, with its progress and a cancel button.
//   - publish, with a note and the summary of what changes; a draft based
//     on a version that is no longer current is not published over the
//     newer one: the page offers to discard the draft or to keep it over
//     the current version.
//   - versions: the audit log of every publication and restoration (who,
//     when, note), and any earlier version restored in one action.
//
// Without Config.Definitions, the definitions come from files, and the
// editor says so.
//
// # Segment sizes
//
// With a store that keeps aggregates (store.Counter, which every store of
// tailor implements), sizes are counted: the store changes them in the
// same write as the profile (see middleware.Aggregates), exact over every
// profile, in the segments it was last classified into. The overview, the
// segment and the rules pages read them whenever they are loaded (a small
// read, whatever the number of profiles), and say when: reloading a page
// shows the counts of the events written so far. Every
// Config.SampleInterval (a minute by default) a reading is also kept in
// memory for the charts (Config.History readings). A segment's member
// list is then the profiles whose stored segments hold it, as counted.
//
// With a store of your own that keeps no aggregates, sizes are measured:
// every Config.SampleInterval the dashboard ranges over the store (which
// must implement store.Ranger) and classifies each profile with the
// engine, as of that time. A measurement reads at most Config.SampleLimit
// profiles; past that, sizes are those of the first profiles the store
// yields, and the pages say so.
//
// A visitor's profile merged into a user's profile (store.Profile.MergedInto)
// is skipped by measurements, member lists and exports: the user's profile
// counts for it, once.
//
// Profiles are classified without request facts (no current page, UTM or
// device): segments defined by the request alone are empty here.
// Measurements and exports evaluate rules as requests do, so rule errors
// they meet are counted in the engine's Errors too.
//
// # Exports
//
// A segment's members download as CSV or NDJSON (one JSON object per line):
// visitor id, user id, first and last seen, visits, orders, revenue, traits
// (as JSON, and as columns for the traits named in the "traits" query
// parameter of the CSV export: ?traits=email,first_name), the visitor's
// segments, and predictions (churn risk, next purchase and its basis,
// typical gap, days since the last purchase, best hour and weekday to
// contact, time zone, usual months). Exports stream: rows are written as the
// store is read and flushed every 500 rows or second, so memory stays flat
// whatever the segment's size; an export that fails midway is cut off (the
// client sees a broken transfer, not a short file). CSV cells of visitors'
// data that start with = + - or @ get a leading apostrophe, so that
// spreadsheets do not run them as formulas.
//
// Exports and sample members read the stored profiles, without the events
// still pending in the write-behind queue (a second at most, by default);
// the inspector shows them.
package admin
