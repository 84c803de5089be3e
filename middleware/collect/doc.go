// Package collect is tailor's collection endpoint: Segment's HTTP
// tracking API and the browser snippet, for a middleware.Personalizer.
// Make it with New and mount it at its Config.Path beside the site, not
// inside Personalizer.Handler (the endpoint reads the visitor's cookie
// itself; inside Handler, a server's calls would each be taken for a new
// visitor):
//
//	c, err := collect.New(p, collect.Config{WriteKeys: keys})
//	mux := http.NewServeMux()
//	mux.Handle("/_tailor/", c)
//	mux.Handle("/", p.Handler(site))
//
// The path may be stripped with http.StripPrefix. A ServeMux that has a
// "GET /" pattern refuses "/_tailor/" as a conflict; register the endpoint
// by method then:
//
//	mux.Handle("POST /_tailor/v1/", c)
//	mux.Handle("GET /_tailor/t.js", c)
//
// # Calls
//
// POST v1/identify, v1/track, v1/page, v1/screen, v1/group, v1/alias and
// v1/batch (also v1/import) take the JSON bodies of Segment's HTTP
// tracking API, with its limits: 32 KB per call or event, 500 KB and 2,500
// events per batch. Each call needs userId or anonymousId (alias: userId
// and previousId); track needs event, group groupId. messageId makes a
// retried call count once: the messageIds of servers and of browsers are
// kept apart, so that neither can take the other's (a browser cannot make
// a server's order a duplicate); timestamp is honoured (corrected by sentAt, as
// Segment does; a time in the future is now); a batch's context applies to
// each of its events, theirs winning.
//
// They are recorded as tailor events: track "Order Completed" (or
// "purchase") with properties.products is an order; page and screen are
// page views (path from properties.path or url, category from
// properties.category); identify sets traits (and, with both ids, merges
// the anonymous visitor into the user, see Identify); group puts the
// group's traits and id under the trait "group"; alias merges previousId
// (a visitor id or a former user id) into userId. userId names the
// profile of the user, anonymousId a visitor (a visitor id of tailor, or
// any other anonymous id).
//
// # Who may call
//
// Servers authenticate with a write key (Config.WriteKeys, Collector.AddWriteKey):
// HTTP Basic with the key as user name, or "writeKey" in the body. They may
// name any user or visitor and record anything. Calls without a key (the
// browser snippet, or anyone who holds a visitor's cookie) are accepted
// from pages of the same origin only (Sec-Fetch-Site, Origin or Referer)
// and are tied to the visitor of the cookie. They may record page and
// screen views and track events, and nothing that segments trust as the
// server's word. These need a write key, and get 403 naming the field and
// why (counted in Stats.CollectRefused; the other events of a batch are
// kept):
//
//   - naming another visitor (anonymousId) or user (userId);
//   - identify, group and alias: traits and merges come from servers;
//   - purchases: track "Order Completed" or "purchase", in any case;
//   - the other order events: "Order Updated", "Order Refunded",
//     "Order Cancelled", in any case;
//   - the track events named in Config.ServerEvents, in any case.
//
// Calls of visitors who are not tracked (no cookie yet, no consent) are
// refused for what they record as above, otherwise accepted and dropped.
//
// # Answers
//
// 200 {"success":true,"accepted":N}, with "errors" listing the events of a
// batch that were refused (the others are kept). A call refused as a
// whole gets its error as the body: 400 for an invalid call, naming the
// field ({"error":"invalid","field":"batch[3].event","message":"required
// for track"}), 401 for a missing or revoked write key, 403, 404, 405,
// 413 past a limit, 429 with Retry-After past Config.KeyRate or
// Config.BrowserRate, 503 when a merge could not be written.
//
// # The snippet
//
// GET t.js is the browser snippet. The site's pages load it and it calls
// the endpoint for the visitor of the cookie:
//
//	<script src="/_tailor/t.js"></script>
//	<button data-track="add_to_cart" data-track-product-id="moneyball">Add</button>
//	<script>tailor.track("video_played", {seconds: 30})</script>
//
// A click on an element with data-track sends an event of that name, its
// data-track-* attributes as properties (data-track-product-id becomes
// product_id); tailor.track sends any event. Calls made before the snippet
// loaded are queued in window.tailor = [[name, props], ...]. Events go
// with navigator.sendBeacon, so they survive the page being left.
//
// A page that a cache at the edge keeps (middleware's Edge.Cacheable) is
// not seen by the origin when the edge answers it: it loads the snippet
// with data-page, which sends the page view (path, url, referrer, title,
// and category from data-category) with fetch, so that its response's
// cookie is kept. tailor.page(props) sends one from script (a single-page
// app's route change).
//
//	<script src="/_tailor/t.js" data-page data-category="red-sox"></script>
//
// The answer to a browser's call carries the visitor's variant key cookie
// when the Personalizer has an Edge and the call's events changed it.
package collect
