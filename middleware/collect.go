package middleware

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/store"
)

// Collector returns the collection endpoint: Segment's HTTP tracking API
// and the browser snippet, under Config.CollectPath. Mount it at that path
// (inside Handler or not; the path may be stripped with http.StripPrefix):
//
//	mux.Handle("/_tailor/", p.Collector())
//
// A ServeMux that has a "GET /" pattern refuses "/_tailor/" as a conflict;
// register the endpoint by method then:
//
//	c := p.Collector()
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
// Servers authenticate with a write key (Config.WriteKeys, AddWriteKey):
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
// GET t.js is the browser snippet (see the package documentation).
func (p *Personalizer) Collector() http.Handler {
	return http.HandlerFunc(p.collect)
}

var callKinds = map[string]string{
	"v1/identify": kindIdentify, "v1/track": kindTrack, "v1/page": kindPage, "v1/screen": kindScreen,
	"v1/group": kindGroup, "v1/alias": kindAlias, "v1/batch": kindBatch, "v1/import": kindBatch,
}

func (p *Personalizer) collect(w http.ResponseWriter, r *http.Request) {
	v := FromContext(r.Context())
	v.SkipPageView()
	route := strings.TrimPrefix(r.URL.Path, p.cfg.CollectPath)
	if route == r.URL.Path {
		route = strings.TrimPrefix(route, "/") // mounted under http.StripPrefix
	}
	if route == "t.js" {
		p.serveSnippet(w, r)
		return
	}
	kind, ok := callKinds[route]
	if !ok {
		writeError(w, &fieldError{status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + truncate(route, 80)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &fieldError{status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " " + route + ": only POST"})
		return
	}
	limit := int64(maxEventBytes)
	if kind == kindBatch {
		limit = maxBatchBytes
	}
	if r.ContentLength > limit {
		writeError(w, tooLarge("", "the body is %d bytes; the limit is %d KB", r.ContentLength, limit>>10))
		return
	}
	buf := bodies.Get().(*[]byte)
	defer bodies.Put(buf)
	body, err := readBody(r, limit, *buf)
	*buf = body[:0] // calls do not alias the body: it can be reused
	if err != nil {
		writeError(w, invalid("", "reading the body: %v", err))
		return
	}
	if int64(len(body)) > limit {
		writeError(w, tooLarge("", "the body is more than %d KB", limit>>10))
		return
	}
	// Who calls: a server names a write key, a browser does not (and need
	// not name the visitor: the cookie does).
	key, basic := basicKey(r)
	if !basic {
		key = gjson.GetBytes(body, "writeKey").String()
	}
	server := key != "" || basic
	now := p.cfg.Now()
	_, calls, errs, fatal := parseCalls(body, kind, !server, now)
	if fatal != nil {
		p.stats.CollectRefused.Add(1)
		writeError(w, fatal)
		return
	}
	var rateKey string
	if server {
		h, ok := p.keys.has(key)
		if !ok {
			p.stats.CollectRefused.Add(1)
			writeError(w, &fieldError{status: http.StatusUnauthorized, Code: "unauthorized", Message: "unknown or revoked write key"})
			return
		}
		rateKey = string(h[:8])
	} else {
		if !sameOrigin(r) {
			p.stats.CollectRefused.Add(1)
			writeError(w, &fieldError{status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "a write key is required for calls that do not come from this site's pages"})
			return
		}
		rateKey = p.cfg.ClientIP(r)
	}
	lim := p.ipRate
	if server {
		lim = p.keyRate
	}
	cost := max(len(calls)+len(errs), 1)
	if cost > lim.maxCost() {
		p.stats.CollectRefused.Add(1)
		writeError(w, tooLarge("batch", "%d events; this client may send at most %d in one request", cost, lim.maxCost()))
		return
	}
	if ok, retry := lim.take(rateKey, cost, now); !ok {
		p.stats.RateLimited.Add(1)
		secs := int(math.Ceil(retry.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, &fieldError{status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: fmt.Sprintf("too many events; retry after %d seconds", secs)})
		return
	}

	var accepted, ignored int
	if server {
		accepted, err = p.collectServer(r, calls)
		if err != nil {
			p.cfg.Logger.Warn("tailor: collection: merging profiles failed", "err", err)
			writeError(w, &fieldError{status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the store failed; retry later"})
			return
		}
	} else {
		accepted, ignored, errs = p.collectBrowser(r, v, calls, errs)
	}
	p.stats.Collected.Add(uint64(accepted))
	p.stats.CollectRefused.Add(uint64(len(errs)))
	writeCollected(w, kind, accepted, ignored, errs)
}

// collectServer records calls authenticated by a write key and returns
// how many it recorded. It fails, recording nothing, when the merges that
// identify and alias calls ask for cannot be written.
func (p *Personalizer) collectServer(r *http.Request, calls []call) (int, error) {
	var links []linkReq
	for _, c := range calls {
		switch {
		case c.kind == kindIdentify && c.userID != "" && c.anonymousID != "":
			links = append(links, linkReq{from: anonProfileID(c.anonymousID), userID: c.userID, at: c.ev.Time})
		case c.kind == kindAlias:
			if from, err := previousProfileID(c.previousID); err == nil {
				links = append(links, linkReq{from: from, userID: c.userID, at: c.ev.Time})
			}
		}
	}
	if len(links) > 0 {
		// A cycle (an alias back to a former id) is dropped, as Segment
		// would keep the first.
		if err := p.link(r.Context(), links); err != nil && !errors.Is(err, errCycle) {
			return 0, err
		}
	}
	for _, c := range calls {
		if c.kind == kindAlias {
			continue // the merge is the alias
		}
		to := c.userID
		if to != "" {
			to = store.UserPrefix + to
		} else {
			to = anonProfileID(c.anonymousID)
		}
		p.recordTo(to, unsafe.Slice(c.ev, 1)...)
	}
	return len(calls), nil
}

// anonProfileID returns the profile of a Segment anonymousId: the visitor,
// for a visitor id of tailor; "anon:"+id for the anonymous ids of other
// tools, which can never be taken for a visitor's or a user's.
func anonProfileID(id string) string {
	if isVisitorID(id) {
		return id
	}
	return "anon:" + id
}

// collectBrowser records calls made without a write key, for the visitor
// of the cookie. It returns how many calls it recorded and ignored, and
// errs with the calls it refused.
func (p *Personalizer) collectBrowser(r *http.Request, v *Visitor, calls []call, errs []fieldError) (accepted, ignored int, _ []fieldError) {
	if v == nil {
		v = p.lookup(r, false)
	}
	// Calls of visitors who are not kept are refused by what they record
	// as any other; what may be recorded is dropped.
	var b *binding
	if v.Tracked() && !v.New() {
		b = v.bind()
	}
	evs := make([]store.Event, 0, len(calls))
	for i := range calls {
		c := &calls[i]
		switch field, why := p.browserRefusal(c, b); {
		case field != "":
			errs = append(errs, fieldError{status: http.StatusForbidden, index: c.index, Code: "forbidden", Field: fieldPrefix(c.index) + field, Message: why})
		case b == nil:
			ignored++
		default:
			evs = append(evs, *c.ev)
		}
	}
	if len(evs) > 0 {
		p.recordVisitor(v, evs)
	}
	return len(evs), ignored, errs
}

// orderEvents are the track events of Segment's order lifecycle
// (besides "Order Completed", which is a purchase). Browsers may not send
// them: only the shop's server knows an order's fate.
var orderEvents = []string{"Order Updated", "Order Refunded", "Order Cancelled"}

// browserRefusal is the whole policy for calls without a write key (the
// browser snippet, or anyone holding a visitor's cookie): it returns the
// field at fault in c and why c may not be recorded for the visitor of
// the cookie b, or "" when it may. With a nil b (a visitor who is not
// kept, whose calls are dropped) only what the call records is checked.
//
// Such calls may record page and screen views and track events, for the
// visitor of the cookie only. What segments trust as the server's word
// needs a write key: identify, group and alias calls (traits and merges),
// purchases (track "Order Completed" or "purchase", which the profile
// counts in Purchases, with their revenue), the other order events, and
// the events named in Config.ServerEvents. Browser track events carry no
// traits and no revenue (see trackFrom).
func (p *Personalizer) browserRefusal(c *call, b *binding) (field, why string) {
	switch {
	case c.kind == kindIdentify || c.kind == kindGroup || c.kind == kindAlias:
		return "type", c.kind + " calls need a write key: traits and merges come from servers (see Personalizer.Identify)"
	case b != nil && c.anonymousID != "" && c.anonymousID != b.id:
		return "anonymousId", "names another visitor than the one of the cookie"
	case b != nil && c.userID != "" && c.userID != b.user:
		return "userId", "names another user than the one of the cookie"
	case c.kind != kindTrack:
		return "", ""
	}
	var reason string
	name := c.ev.Name
	switch {
	case name == store.EventPurchase:
		reason = "it records a purchase (send orders from your server)"
	case slices.ContainsFunc(orderEvents, func(s string) bool { return strings.EqualFold(s, name) }):
		reason = "order events come from servers"
	case slices.ContainsFunc(p.cfg.ServerEvents, func(s string) bool { return strings.EqualFold(s, name) }):
		reason = "it is one of Config.ServerEvents"
	default:
		return "", ""
	}
	return "event", "track " + strconv.Quote(c.event) + " needs a write key: " + reason
}

// recordVisitor records events of the visitor v, as record does, keeping
// the events' ids (messageIds) when they have one.
func (p *Personalizer) recordVisitor(v *Visitor, evs []store.Event) {
	b := v.bind()
	mu := p.lock(b.pid)
	mu.Lock()
	last := b.st.prof.LastSeen
	for i := range evs {
		e := &evs[i]
		if e.ID == "" {
			e.ID = p.nextID()
		}
		if e.Type == store.TypePage {
			e.NewVisit = last.IsZero() || e.Time.Sub(last) > p.cfg.VisitTimeout
		}
		if e.Time.After(last) {
			last = e.Time
		}
	}
	frozen := b.st.prof.MergedInto != ""
	if !frozen {
		b.st.prof.Apply(p.lim, evs...)
		p.enqueue(b.pid, evs)
	}
	mu.Unlock()
	if frozen {
		p.recordTo(b.pid, evs...) // forwards them
		return
	}
	p.stats.Events.Add(uint64(len(evs)))
	p.flushSoon()
}

// basicKey returns the user name of r's HTTP Basic credentials: the write
// key.
func basicKey(r *http.Request) (string, bool) {
	u, _, ok := r.BasicAuth()
	return u, ok
}

// sameOrigin reports whether r comes from a page of the site it is sent
// to: Sec-Fetch-Site says so, or else the host of Origin or Referer is r's.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin"
	}
	for _, h := range []string{"Origin", "Referer"} {
		if o := r.Header.Get(h); o != "" {
			u, err := url.Parse(o)
			return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
		}
	}
	return false
}

// writeError answers with fe as the JSON body.
func writeError(w http.ResponseWriter, fe *fieldError) {
	b, _ := json.Marshal(fe)
	writeJSON(w, fe.status, b)
}

// writeCollected answers a call whose body was read.
func writeCollected(w http.ResponseWriter, kind string, accepted, ignored int, errs []fieldError) {
	if accepted == 0 && ignored == 0 && len(errs) > 0 {
		// Refused as a whole: the first error is the answer.
		fe := errs[0]
		if len(errs) == 1 {
			writeError(w, &fe)
			return
		}
		b, _ := json.Marshal(struct {
			*fieldError
			Errors []fieldError `json:"errors"`
		}{&fe, errs})
		writeJSON(w, fe.status, b)
		return
	}
	b := make([]byte, 0, 64)
	b = append(b, `{"success":true,"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	if ignored > 0 {
		b = append(b, `,"ignored":`...)
		b = strconv.AppendInt(b, int64(ignored), 10)
	}
	if len(errs) > 0 {
		e, _ := json.Marshal(errs)
		b = append(append(b, `,"errors":`...), e...)
	}
	b = append(b, '}')
	writeJSON(w, http.StatusOK, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// writeKeys are the write keys of the collection endpoint, kept as
// SHA-256 hashes.
type writeKeys struct {
	mu sync.RWMutex
	m  map[[32]byte]struct{}
}

func checkWriteKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty write key")
	case len(key) > 256:
		return fmt.Errorf("write key of %d bytes, more than 256", len(key))
	case strings.ContainsAny(key, ":\x00"):
		return errors.New("a write key cannot hold ':' (it is an HTTP Basic user name)")
	}
	return nil
}

func (k *writeKeys) add(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[[32]byte]struct{})
	}
	k.m[sha256.Sum256([]byte(key))] = struct{}{}
}

func (k *writeKeys) remove(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := sha256.Sum256([]byte(key))
	_, ok := k.m[h]
	delete(k.m, h)
	return ok
}

// has reports whether key is a write key, and returns its hash.
func (k *writeKeys) has(key string) ([32]byte, bool) {
	h := sha256.Sum256([]byte(key))
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.m[h]
	return h, ok && key != ""
}

// AddWriteKey adds a write key of the collection endpoint (see
// Collector). It is safe to call at any time.
func (p *Personalizer) AddWriteKey(key string) error {
	if err := checkWriteKey(key); err != nil {
		return fmt.Errorf("tailor: AddWriteKey: %w", err)
	}
	p.keys.add(key)
	return nil
}

// RevokeWriteKey removes a write key: calls with it get 401 from now on.
// It reports whether the key was known.
func (p *Personalizer) RevokeWriteKey(key string) bool {
	return p.keys.remove(key)
}

// bodies are buffers for request bodies: the calls parsed from a body do
// not alias it.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// readBody reads r's body into buf, up to limit+1 bytes.
func readBody(r *http.Request, limit int64, buf []byte) ([]byte, error) {
	if n := r.ContentLength; n > 0 && int64(cap(buf)) < n+1 {
		buf = make([]byte, 0, n+1)
	}
	lr := io.LimitReader(r.Body, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
