// Package webhook tells another system, over HTTP, when visitors enter and
// leave segments: a CRM that starts a campaign when a visitor becomes a
// "likely-to-churn", a chat tool that alerts sales when an account reaches
// "pricing-page-repeat".
//
// # Use
//
// A Dispatcher queues the changes that a Personalizer reports and posts
// them in the background. New registers it as an Observer of the
// Personalizer (see middleware.Observer), beside any others, such as
// metrics:
//
//	p, err := middleware.New(middleware.Config{...})
//	...
//	d, err := webhook.New(webhook.Config{Personalizer: p, URL: "https://crm.example.com/hooks/tailor", Secret: secret})
//	...
//	p.Close(ctx) // then
//	d.Close(ctx) // deliver what is queued
//
// Make the Dispatcher before serving: changes reported before New are not
// delivered.
//
// # Deliveries
//
// Each segment entered or exited is one delivery: a POST of a JSON object
// (an Event)
//
//	{"id":"4f0c…","type":"segment.entered","segment":"customer",
//	 "visitorId":"9a1e…","userId":"u-42","time":"2026-03-01T10:00:00.123Z"}
//
// with Content-Type application/json. "type" is "segment.entered" or
// "segment.exited"; "userId" is absent for anonymous visitors. "id" is
// unique per delivery and the same on every attempt (it is also in the
// X-Tailor-Delivery header): receivers use it to ignore a delivery they
// already processed, as a retried delivery may arrive twice. Deliveries are
// not ordered: a retried one may arrive after later ones; use "time" to
// order them.
//
// # Signatures
//
// Every attempt carries the header
//
//	X-Tailor-Signature: t=1772359200,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// where t is the time of the attempt in Unix seconds and v1 the hex
// HMAC-SHA256, keyed with Config.Secret, of t, a dot, and the raw body: the
// scheme Stripe uses. A receiver recomputes it with Verify, on the body
// exactly as received, and rejects deliveries whose timestamp is too far
// from its clock, which bounds replays. Several v1 elements may appear (to
// rotate secrets); one matching is enough.
//
// # Retries
//
// A delivery is retried after a network error, a timeout, a 429 or a 5xx
// answer, at most Config.MaxAttempts attempts in all, waiting an exponential
// backoff with jitter between attempts: from BackoffBase, doubling, at most
// BackoffMax, each wait drawn uniformly in its upper half. A Retry-After
// header (seconds or an HTTP date) replaces the computed wait, up to
// BackoffMax. Any other answer (2xx: delivered; 3xx, other 4xx: failed) ends
// the delivery; redirects are not followed. Retries do not hold up the other
// deliveries: Config.Workers attempts run at once.
//
// # Bounds
//
// The queue holds at most Config.QueueSize deliveries, waiting to be sent or
// retried; the attempts in flight (at most Workers) are not counted. When a
// change arrives at a full queue, the oldest queued delivery is dropped,
// counted in Stats.Dropped and logged. Queueing never blocks the
// Personalizer.
//
// The delivery log (Log) keeps the last Config.LogSize deliveries with their
// outcome, for the admin dashboard.
package webhook
