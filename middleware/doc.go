// Package middleware is tailor's net/http entry point: it recognises each
// visitor by a signed, encrypted cookie, records what they do, sorts them
// into segments, and puts a [Visitor] into every request's context, so that
// handlers and templates show each visitor what is meant for them, on the
// server, on the very next request.
//
// # Use
//
//	keys, err := middleware.LoadOrCreateKeys("tailor.keys")
//	...
//	p, err := middleware.New(middleware.Config{
//		Keys:   keys,
//		Store:  st,     // store/bolt, store/redis, ...
//		Engine: engine, // rules.NewEngine(segments...)
//	})
//	...
//	srv := &http.Server{Handler: p.Handler(mux)}
//	...
//	srv.Shutdown(ctx) // drain requests
//	p.Close(ctx)      // then write every pending event
//
// In a handler, [FromContext] returns the visitor:
//
//	v := middleware.FromContext(r.Context())
//	if v.In("red-sox-fan") { ... }
//	v.Describe("red-sox", "red-sox-banner") // what this page is about
//	v.Purchase(items...)                     // record an order
//
// Templates use [FuncMap].
//
// # Identity
//
// The cookie holds a random 128-bit visitor id, signed with HMAC-SHA256 and
// encrypted with AES-256 (gorilla/securecookie). Keys rotate: cookies under
// an older key pair in Config.Keys are accepted and re-issued under the
// newest. A tampered, truncated, expired or foreign cookie gets a new
// visitor, never an error, and is counted in [Stats].
//
// # Write-behind
//
// Events are folded into the visitor's cached profile at once (so the next
// request sees them) and queued; a background flusher writes the queue to
// the store every Config.WriteBehind.FlushInterval, in batches. The cache is
// never the only copy of an event: events stay in the queue until the store
// acknowledges them, and Close writes what is left.
//
// A visitor is kept only once they come back with the cookie they were
// given: one-hit clients and bots never reach the store, and cost no memory.
// The new visitor's first page view travels in that cookie, signed and
// encrypted, and is recorded when they come back, on whichever instance
// they come back to; actions of a new visitor (Track, Purchase) are kept at
// once.
//
// # Collecting events
//
// Package [github.com/tailorhq/tailor/middleware/collect] serves Segment's
// HTTP tracking API and the browser snippet t.js, mounted beside Handler.
//
// From Go, [Visitor.Track], [Visitor.Page] and [Visitor.Purchase] record
// for the visitor of a request (found by [FromContext] in a handler wrapped
// by Handler, by [Personalizer.VisitorOf] in any other);
// [Personalizer.TrackUser] and [Personalizer.IdentifyUser] for a user known
// by id alone (a CRM, an email tool).
//
// # Users
//
// [Personalizer.Identify] tells that the visitor is a user (once they sign
// in): the visitor's profile is merged into the user's, which every browser
// of the user and every server-side event about the user shares, and the
// cookie names the user from then on. [Personalizer.SignOut], on sign-out,
// deletes the cookie: the browser comes back as a new anonymous visitor,
// and the user's profile stays for the next sign-in.
//
// The merge is exactly-once and safe with several instances (see the
// README's "Identity stitching" and package internal/core's stitch.go).
//
// # Privacy
//
// Config.Consent decides per request whether a visitor is tracked
// ([ConsentFull]), classified from the request alone ([ConsentContextual],
// the default for requests with Sec-GPC: 1 or DNT: 1), or neither
// ([ConsentNone]). A visitor who comes back with a cookie but without
// consent is erased, and the cookie deleted. [Personalizer.Forget] erases a
// visitor or a user; Config.Retention expires profiles unseen for 13
// months, and Config.JournalRetention trims the store's journal of
// purchases after 30 days (an erased or expired profile's purchases
// leave it at once).
//
// # Caches
//
// Every response carries Cache-Control: private (a stricter value set by
// the handler is kept) and Vary: Cookie, so shared caches never serve one
// visitor's page to another.
//
// Pages that a cache at the edge (Varnish, a CDN) may keep opt in with
// [Personalizer.Edge]: they vary on a signed, low-cardinality variant key
// (the Tailor-Variant header the edge fills from a cookie), never on the
// visitor, and carry nothing unique to the visitor.
package middleware
