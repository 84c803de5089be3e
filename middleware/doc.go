// Package middleware is tailor's net/http entry point: it recognises each
// visitor by a signed, encrypted cookie, records what they do, sorts them
// into segments, and puts a [Visitor] into every request's context, so that
// handlers and templates show each visitor what is meant for them, on the
// server, on the very next request.
//
// # Use
//
//	p, err := middleware.New(middleware.Config{
//		Keys:   []middleware.KeyPair{keys}, // see GenerateKeyPair
//		Store:  st,                         // store/bolt, store/redis, ...
//		Engine: engine,                     // rules.NewEngine(segments...)
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
// the store every Config.FlushInterval, in batches. The cache is never the
// only copy of an event: events stay in the queue until the store
// acknowledges them, and Close writes what is left.
//
// A visitor is kept only once they come back with the cookie they were
// given: one-hit clients and bots never reach the store, and cost no memory.
// The new visitor's first page view travels in that cookie, signed and
// encrypted, and is recorded when they come back, on whichever instance
// they come back to; actions of a new visitor (Track, Purchase) are kept at
// once.
//
// # Caches
//
// Every response carries Cache-Control: private (a stricter value set by
// the handler is kept) and Vary: Cookie, so shared caches never serve one
// visitor's page to another.
package middleware
