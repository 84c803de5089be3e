// Package rules sorts visitors into segments.
//
// A [Rule] looks at an [Input] — the visitor's profile, facts of the current
// request, the time — and says whether the visitor matches. A [Segment] names
// a rule; a [Set] of segments, made with [NewSet] or parsed from a segments
// file with [Parse], is ordered by priority, with exclusive groups; an
// [Engine] classifies visitors with its current set, which it can replace
// atomically while it serves ([Engine.Reload], [Engine.ReloadFile],
// [Engine.Watch]).
//
// # Rules
//
// A rule is one of:
//
//   - a condition: a MongoDB-style query over the document described below,
//     with the semantics of GrowthBook's targeting conditions (see
//     [Condition]);
//   - a built-in rule, made in Go by its constructor or named in a segments
//     file with JSON arguments;
//   - a plugin: a rule that a developer registers by name with [Register]
//     and a [Factory], usable from segments files like a built-in.
//
// The built-in rules, with their name and arguments in segments files:
//
//	purchased      {"min": 1}                                   Purchased
//	visits         {"min": 2}                                   Visits
//	categoryViews  {"category": "hats", "min": 2}               CategoryViews
//	pageVisited    {"path": "/pricing", "match": "exact|prefix|glob",
//	                "min": 2, "within": "7d"}                   PageVisited
//	eventCount     {"name": "add_to_cart", "where": {condition on props},
//	                "min": 1, "max": 3, "within": "30d"}        CountEvents
//	recency        {"of": "seen|firstSeen|purchase|<event>",
//	                "within": "7d"} or {"olderThan": "90d"}     Recency
//	lifecycle      {"stage": "non-customer|one-time|repeat|loyal",
//	                "repeat": 2, "loyal": 5, "loyalWithin": "365d"} LifecycleStage
//	rfm            {"r": [4, 5], "f": 5, "m": [3, 5], "cuts": {"recency": [30, 90, 180, 365],
//	                "frequency": [2, 3, 5, 10], "monetary": [50, 200, 500, 1000]}} RFM
//	email          {"action": "opened|clicked", "of": "any|all|none",
//	                "last": 5, "campaigns": ["may", "april"]}  EmailEngagement
//	interest       {"category": "watercolours", "top": 1,
//	                "minScore": 2.5, "halfLife": "14d"}         Interested
//	trait          {"path": "crm.stage", "is": "opportunity"}   Trait
//	context        {"utmSource": "newsletter", "utmMedium": [...], "utmCampaign": [...],
//	                "referrer": "google.com", "device": ["mobile", "tablet"],
//	                "country": ["FR", "BE"], "path": "/docs/*",
//	                "visitor": "new|returning"}                 Contextual
//	channel        {"is": "in-store", "trait": "channel",
//	                "property": "channel", "default": "online"} InChannel
//	seasonal       {"months": ["dec", "apr"], "share": 0.5,
//	                "minOrders": 2, "each": true}               SeasonalBuyer
//	dueToBuy       {"within": "30d", "minOrders": 2}            DueToBuy
//	inSegment      "name of another segment"                    InSegment
//	and, or        [rule, rule, ...]                            And, Or
//	not            rule                                         Not
//	condition      {condition}                                  ConditionRule
//
// Durations are Go durations with an extra unit "d" of 24 hours ("7d",
// "36h"). Windows ("within") count the events of the ring of recent events
// (store.Limits.Recent, 200 by default); counts over the whole history use
// the profile's counters. The constructors' documentation says what each
// argument means and what its default is.
//
// Rules that read only the request (context, and conditions on "request")
// classify visitors without a profile too — crawlers, visitors who did not
// consent to tracking; the other built-ins are false for them (but
// channel, which gives them its default channel), and conditions see their
// profile's values as null.
//
// # Segments files
//
// A segments file is JSON (see [Parse] for its format):
//
//	{
//	  "savedGroups": {"staff": ["u-1", "u-2"]},
//	  "segments": [
//	    {"name": "staff", "priority": 100, "condition": {"userId": {"$inGroup": "staff"}}},
//	    {"name": "pricing-curious", "description": "visited the pricing page twice this week",
//	     "priority": 50, "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}},
//	    {"name": "loyal", "group": "lifecycle", "rule": {"lifecycle": {"stage": "loyal"}}},
//	    {"name": "hot-lead", "rule": {"and": [{"inSegment": "pricing-curious"},
//	                                          {"trait": {"path": "crm.stage", "is": "opportunity"}}]}}
//	  ]
//	}
//
// A file with "strictTypes": true compiles its conditions with
// [StrictTypes]: $gt, $gte, $lt and $lte order only two numbers or two
// strings. "numericStrings", from files written when that was the default,
// is the opposite switch: false is "strictTypes": true, and true asks for
// the default, in which a number and a numeric string compare numerically.
//
// Parse reports every problem of a file at once, each with its file, line,
// column and JSON Pointer. An engine never replaces its set with a bad one:
// Reload keeps the set it has and says why, and [Engine.Status] reports the
// last reload and its error.
//
// # The document
//
// Conditions read the visitor as a JSON document: the profile (see
// store.Profile) and the request's facts (see [Facts]). Its shape is the
// contract between the site and the people who write conditions:
//
//	{
//	  "id": "3f9c...",                      the visitor's id
//	  "userId": "u-7",                      set by identify; missing if none
//	  "firstSeen": "2026-03-01T09:12:00Z",  RFC 3339, UTC
//	  "lastSeen": "2026-03-06T12:00:00Z",
//	  "visits": 4,
//	  "counts": {"page": 31, "add_to_cart": 2, "purchase": 1},  events per name
//	  "pages": {"/pricing": 2, "/docs/start": 5},               views per path
//	  "categories": {"plans": 2, "watercolours": 9},            views per category
//	  "views": {"sku-12": 3},                                   views per item
//	  "purchases": {
//	    "count": 1, "revenue": 49,
//	    "first": "2026-03-06T11:00:00Z", "last": "2026-03-06T11:00:00Z",
//	    "categories": {"plans": 1}, "items": {"pro": 1},        units bought
//	    "months": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]          orders per month, January first
//	  },
//	  "traits": {"plan": "trial", "crm": {"stage": "opportunity"}},
//	  "request": {                           facts of the current request
//	    "path": "/docs", "referrer": "www.google.com",
//	    "utmSource": "newsletter", "utmMedium": "email", "utmCampaign": "spring",
//	    "device": "mobile", "country": "FR", "new": false
//	  },
//	  "recent": [                            the ring of recent events, oldest first
//	    {"time": "2026-03-06T10:00:00Z", "type": "page", "path": "/pricing",
//	     "category": "plans", "item": "...", "referrer": "...", "utmSource": "...",
//	     "utmMedium": "...", "utmCampaign": "...", "device": "mobile", "newVisit": true,
//	     "id": "..."},
//	    {"time": "...", "type": "track", "name": "purchase", "revenue": 49,
//	     "items": [{"id": "pro", "category": "plans", "price": 49, "quantity": 1}],
//	     "props": {...}},
//	    {"time": "...", "type": "identify", "userId": "u-7", "traits": {...}}
//	  ]
//	}
//
// Empty strings, and the request facts that are not known, are missing
// (null to conditions); a visitor without a profile has only "request".
// [Input.Document] renders the document, and [Input] explains how it is
// cached.
//
// The engine does not render the document to evaluate conditions: it reads
// the profile's values where conditions look (counts, pages, traits,
// request facts...), renders only the members they read whole, and reads
// the ring of recent events event by event, so that conditions that do not
// look at "recent" pay nothing for it, and those that count recent events
// in a window only look at the events in it. The result is exactly the one
// of the condition matched against the rendered document.
//
// # Results and caching
//
// [Engine.ClassifyMemo] keeps a classification in a [Memo] with how long it
// holds: the earliest time at which a rule evaluated may change its answer
// as time passes (a window moving past an event, a score decaying), and the
// request facts the rules read. It serves the memo again for the same
// profile while it holds, so that a visitor is classified once per profile
// change, not on every request. Built-in rules and conditions say
// what they depend on; a plugin that implements [Dependent] can too, and
// one that does not is re-evaluated on every request.
//
// A change of the profile need not end the memo either. Applying an event
// notes the parts of the profile it touched ([store.Touch]: the visits,
// the times, the recent events, the purchases, the traits, and the keys of
// the counters), and the simpler built-in rules (purchased, visits,
// eventCount, categoryViews, pageVisited, trait, context, inSegment and
// their combinations) say which parts their answer depends on: a count of
// at least n depends on its counter until it is true, and then on nothing,
// as counts only grow. So a returning visitor's page view, which touches
// the page counts, the times and the recent events, keeps a classification
// that reads none of them. A plugin says its parts by implementing
// [Touching]; the other built-in rules, conditions and the other plugins
// depend on every part. [Engine.Recall] checks a memo without an
// [Input], also against events kept aside, not applied yet. A plugin
// that consults something besides the profile, the request and the time
// (a model that learns from everyone's purchases) has its engine told
// when that changes, with [Engine.Invalidate].
//
// # Explanations
//
// [Engine.Explain] says, for every segment, whether the visitor is in it,
// and for every clause of its rule the value found, the operator and the
// expected value: "pages[/pricing] within 7d = 1, want >= 2". Built-in
// rules and conditions explain themselves; plugins may implement
// [Explainer].
//
// # Evaluation never fails a request
//
// Rules are evaluated for every visitor, so a rule that cannot be evaluated
// (a trait of an unexpected type, a plugin that panics) is "no match",
// counted by [Engine.Errors], never an error page. Problems with rules are
// found when they are loaded, not when they are evaluated.
package rules
