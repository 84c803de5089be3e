package collect

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/middleware/internal/core"
	"github.com/tailorhq/tailor/middleware/internal/edgehook"
	"github.com/tailorhq/tailor/middleware/internal/tracking"
	"github.com/tailorhq/tailor/store"
)

// Config configures a Collector. Every field documents its zero value.
type Config struct {
	// Path is the path under which the Collector serves the Segment
	// tracking API (Path + "v1/track", ...) and the browser snippet (Path
	// + "t.js"). It must begin and end with "/". Default "/_tailor/".
	Path string
	// WriteKeys authenticate server-to-server calls (HTTP Basic with the
	// key as user name, or "writeKey" in the body). Keys are added and
	// revoked at run time with AddWriteKey and RevokeWriteKey. Default:
	// none (only same-origin browser calls).
	WriteKeys []string
	// ServerEvents names track events that only calls with a write key
	// (servers) may record, compared ignoring case: the events your
	// segments trust as the server's word ("Signed Up", "Trial
	// Started"). Orders are always reserved, whatever this lists (see
	// Who may call). Default: none beyond orders.
	ServerEvents []string
	// KeyRate bounds the events that each write key may send, per second,
	// with bursts of two seconds' worth. A call is admitted only if all
	// its events fit in what is left of the burst; past it calls get 429
	// Too Many Requests with Retry-After (at most two seconds), and a
	// batch larger than the burst gets 413. Default 10,000; negative
	// means no bound.
	KeyRate float64
	// BrowserRate bounds the events per second that each client address
	// may send without a write key (the browser snippet), with bursts of
	// two seconds' worth, as KeyRate does. At most 100,000 addresses are
	// remembered; a new one always gets a full burst, in place of the
	// least recently seen. Default 20; negative means no bound.
	BrowserRate float64
	// ClientIP returns the address that BrowserRate counts a request
	// under. Default: the host of r.RemoteAddr (set it to read a header
	// such as X-Forwarded-For only behind a proxy you trust).
	ClientIP func(r *http.Request) string
}

// A Collector is the collection endpoint of a Personalizer (see the
// package documentation). It is an http.Handler, safe for concurrent use.
type Collector struct {
	cfg     Config
	p       *middleware.Personalizer
	core    *core.Core
	keys    writeKeys
	keyRate *limiter // per write key
	ipRate  *limiter // per client address, for calls without a key
	inside  sync.Once
}

// New returns the collection endpoint of p, or an error naming each
// invalid field of cfg.
func New(p *middleware.Personalizer, cfg Config) (*Collector, error) {
	var errs []error
	if p == nil {
		errs = append(errs, errors.New("the Personalizer is nil"))
	}
	if cfg.Path == "" {
		cfg.Path = "/_tailor/"
	}
	if !strings.HasPrefix(cfg.Path, "/") || !strings.HasSuffix(cfg.Path, "/") {
		errs = append(errs, fmt.Errorf("Config.Path: %q must begin and end with /", cfg.Path))
	}
	for i, k := range cfg.WriteKeys {
		if err := checkWriteKey(k); err != nil {
			errs = append(errs, fmt.Errorf("Config.WriteKeys[%d]: %w", i, err))
		}
	}
	for i, name := range cfg.ServerEvents {
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("Config.ServerEvents[%d]: empty event name", i))
		case len(name) > tracking.MaxName:
			errs = append(errs, fmt.Errorf("Config.ServerEvents[%d]: %d bytes; the limit is %d", i, len(name), tracking.MaxName))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tailor/collect: invalid config: %w", errors.Join(errs...))
	}
	if cfg.KeyRate == 0 {
		cfg.KeyRate = 10_000
	}
	if cfg.BrowserRate == 0 {
		cfg.BrowserRate = 20
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	cfg.ServerEvents = slices.Clone(cfg.ServerEvents) // the caller may reuse its slice
	c := &Collector{cfg: cfg, p: p, core: core.Unwrap.Personalizer(p),
		keyRate: newLimiter(cfg.KeyRate), ipRate: newLimiter(cfg.BrowserRate)}
	for _, k := range cfg.WriteKeys {
		c.keys.add(k)
	}
	return c, nil
}

// remoteHost returns the host of r.RemoteAddr.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

var callKinds = map[string]string{
	"v1/identify": tracking.KindIdentify, "v1/track": tracking.KindTrack, "v1/page": tracking.KindPage, "v1/screen": tracking.KindScreen,
	"v1/group": tracking.KindGroup, "v1/alias": tracking.KindAlias, "v1/batch": tracking.KindBatch, "v1/import": tracking.KindBatch,
}

// ServeHTTP answers a call of the tracking API, or the snippet.
func (p *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if v := middleware.FromContext(r.Context()); v != nil {
		// Mounted inside Handler: it works, but each server call was
		// taken for a new visitor, and t.js cannot be cached publicly.
		v.SkipPageView()
		p.inside.Do(func() {
			p.core.Logger().Warn("tailor/collect: the Collector is mounted inside Personalizer.Handler; mount it beside it " +
				"(a mux with the Collector at its Path and Handler(site) at \"/\"), or every server call counts as a new visitor")
		})
	}
	route := strings.TrimPrefix(r.URL.Path, p.cfg.Path)
	if route == r.URL.Path {
		route = strings.TrimPrefix(route, "/") // mounted under http.StripPrefix
	}
	if route == "t.js" {
		p.serveSnippet(w, r)
		return
	}
	kind, ok := callKinds[route]
	if !ok {
		writeError(w, &tracking.FieldError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + tracking.Truncate(route, 80)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &tracking.FieldError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " " + route + ": only POST"})
		return
	}
	limit := int64(tracking.MaxEventBytes)
	if kind == tracking.KindBatch {
		limit = tracking.MaxBatchBytes
	}
	if r.ContentLength > limit {
		writeError(w, tracking.TooLarge("", "the body is %d bytes; the limit is %d KB", r.ContentLength, limit>>10))
		return
	}
	buf := bodies.Get().(*[]byte)
	defer bodies.Put(buf)
	body, err := readBody(r, limit, *buf)
	*buf = body[:0] // calls do not alias the body: it can be reused
	if err != nil {
		writeError(w, tracking.Invalid("", "reading the body: %v", err))
		return
	}
	if int64(len(body)) > limit {
		writeError(w, tracking.TooLarge("", "the body is more than %d KB", limit>>10))
		return
	}
	// Who calls: a server names a write key, a browser does not (and need
	// not name the visitor: the cookie does).
	key, basic := basicKey(r)
	if !basic {
		key = gjson.GetBytes(body, "writeKey").String()
	}
	server := key != "" || basic
	now := p.core.Now()
	_, calls, errs, fatal := tracking.ParseCalls(body, kind, !server, now)
	if fatal != nil {
		p.core.Counters().CollectRefused.Add(1)
		writeError(w, fatal)
		return
	}
	var rateKey string
	if server {
		h, ok := p.keys.has(key)
		if !ok {
			p.core.Counters().CollectRefused.Add(1)
			writeError(w, &tracking.FieldError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "unknown or revoked write key"})
			return
		}
		rateKey = string(h[:8])
	} else {
		if !sameOrigin(r) {
			p.core.Counters().CollectRefused.Add(1)
			writeError(w, &tracking.FieldError{Status: http.StatusUnauthorized, Code: "unauthorized",
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
		p.core.Counters().CollectRefused.Add(1)
		writeError(w, tracking.TooLarge("batch", "%d events; this client may send at most %d in one request", cost, lim.maxCost()))
		return
	}
	if ok, retry := lim.take(rateKey, cost, now); !ok {
		p.core.Counters().RateLimited.Add(1)
		secs := int(math.Ceil(retry.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, &tracking.FieldError{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: fmt.Sprintf("too many events; retry after %d seconds", secs)})
		return
	}

	var accepted, ignored int
	if server {
		accepted, err = p.collectServer(r, calls)
		if err != nil {
			p.core.Logger().Warn("tailor: collection: merging profiles failed", "err", err)
			writeError(w, &tracking.FieldError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the store failed; retry later"})
			return
		}
	} else {
		// The visitor of Handler, or else the one of the cookie; a browser
		// in a preview is not tracked, so its calls are ignored.
		visitor := p.p.VisitorOf(r)
		accepted, ignored, errs = p.collectBrowser(visitor, calls, errs)
		// The visitor's variant key, for pages a cache at the edge keeps
		// (middleware's Edge), follows the events just recorded.
		edgehook.Refresh(visitor, w.Header(), r)
	}
	p.core.Counters().Collected.Add(uint64(accepted))
	p.core.Counters().CollectRefused.Add(uint64(len(errs)))
	writeCollected(w, kind, accepted, ignored, errs)
}

// collectServer records calls authenticated by a write key and returns
// how many it recorded. It fails, recording nothing, when the merges that
// identify and alias calls ask for cannot be written.
func (p *Collector) collectServer(r *http.Request, calls []tracking.Call) (int, error) {
	var links []core.LinkReq
	for _, c := range calls {
		switch {
		case c.Kind == tracking.KindIdentify && c.UserID != "" && c.AnonymousID != "":
			links = append(links, core.LinkReq{From: tracking.AnonProfileID(c.AnonymousID), UserID: c.UserID, At: c.Ev.Time})
		case c.Kind == tracking.KindAlias:
			if from, err := core.PreviousProfileID(c.PreviousID); err == nil {
				links = append(links, core.LinkReq{From: from, UserID: c.UserID, At: c.Ev.Time})
			}
		}
	}
	if len(links) > 0 {
		// A cycle (an alias back to a former id) is dropped, as Segment
		// would keep the first.
		if err := p.core.Link(r.Context(), links); err != nil && !errors.Is(err, core.ErrCycle) {
			return 0, err
		}
	}
	for _, c := range calls {
		if c.Kind == tracking.KindAlias {
			continue // the merge is the alias
		}
		to := c.UserID
		if to != "" {
			to = store.UserPrefix + to
		} else {
			to = tracking.AnonProfileID(c.AnonymousID)
		}
		p.core.RecordTo(to, unsafe.Slice(c.Ev, 1)...)
	}
	return len(calls), nil
}

// collectBrowser records calls made without a write key, for the visitor
// of the cookie. It returns how many calls it recorded and ignored, and
// errs with the calls it refused.
func (p *Collector) collectBrowser(visitor *middleware.Visitor, calls []tracking.Call, errs []tracking.FieldError) (accepted, ignored int, _ []tracking.FieldError) {
	v, _ := core.Unwrap.Visitor(visitor)
	// Calls of visitors who are not kept are refused by what they record
	// as any other; what may be recorded is dropped.
	kept, who := v.Tracked && !v.New, v.CookieID() // one binding for the whole batch
	evs := make([]store.Event, 0, len(calls))
	for i := range calls {
		c := &calls[i]
		switch field, why := p.browserRefusal(c, who, kept); {
		case field != "":
			errs = append(errs, tracking.FieldError{Status: http.StatusForbidden, Index: c.Index, Code: "forbidden", Field: tracking.FieldPrefix(c.Index) + field, Message: why})
		case !kept:
			ignored++
		default:
			evs = append(evs, *c.Ev)
		}
	}
	if len(evs) > 0 {
		p.core.RecordVisit(v, evs)
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
// the cookie (who), or "" when it may. For a visitor who is not kept (whose
// calls are dropped) only what the call records is checked.
//
// Such calls may record page and screen views and track events, for the
// visitor of the cookie only. What segments trust as the server's word
// needs a write key: identify, group and alias calls (traits and merges),
// purchases (track "Order Completed" or "purchase", which the profile
// counts in Purchases, with their revenue), the other order events, and
// the events named in Config.ServerEvents. Browser track events carry no
// traits and no revenue (see trackFrom).
func (p *Collector) browserRefusal(c *tracking.Call, who cookie.ID, kept bool) (field, why string) {
	switch {
	case c.Kind == tracking.KindIdentify || c.Kind == tracking.KindGroup || c.Kind == tracking.KindAlias:
		return "type", c.Kind + " calls need a write key: traits and merges come from servers (see Personalizer.Identify)"
	case kept && c.AnonymousID != "" && c.AnonymousID != who.Visitor:
		return "anonymousId", "names another visitor than the one of the cookie"
	case kept && c.UserID != "" && c.UserID != who.User:
		return "userId", "names another user than the one of the cookie"
	case c.Kind != tracking.KindTrack:
		return "", ""
	}
	var reason string
	name := c.Ev.Name
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
	return "event", "track " + strconv.Quote(c.Event) + " needs a write key: " + reason
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
func writeError(w http.ResponseWriter, fe *tracking.FieldError) {
	b, _ := json.Marshal(fe)
	writeJSON(w, fe.Status, b)
}

// writeCollected answers a call whose body was read.
func writeCollected(w http.ResponseWriter, kind string, accepted, ignored int, errs []tracking.FieldError) {
	if accepted == 0 && ignored == 0 && len(errs) > 0 {
		// Refused as a whole: the first error is the answer.
		fe := errs[0]
		if len(errs) == 1 {
			writeError(w, &fe)
			return
		}
		b, _ := json.Marshal(struct {
			*tracking.FieldError
			Errors []tracking.FieldError `json:"errors"`
		}{&fe, errs})
		writeJSON(w, fe.Status, b)
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

// AddWriteKey adds a write key. It is safe to call at any time.
func (p *Collector) AddWriteKey(key string) error {
	if err := checkWriteKey(key); err != nil {
		return fmt.Errorf("tailor/collect: AddWriteKey: %w", err)
	}
	p.keys.add(key)
	return nil
}

// RevokeWriteKey removes a write key: calls with it get 401 from now on.
// It reports whether the key was known.
func (p *Collector) RevokeWriteKey(key string) bool {
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
