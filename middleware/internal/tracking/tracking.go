package tracking

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/store"
)

// Limits of the collection endpoint: Segment's, and tailor's own bounds on
// what one event may put in a profile.
const (
	MaxEventBytes  = 32 << 10  // one call, or one event of a batch
	MaxBatchBytes  = 500 << 10 // one batch
	maxBatchEvents = 2500      // events in one batch
	maxDepth       = 64        // nesting of JSON arrays and objects
	MaxName        = 200       // event and page names, in bytes
	maxMessageID   = 200       // messageId, in bytes
	maxProducts    = 200       // products of one order
	maxPath        = 1024      // page paths, in bytes; longer ones are cut
	// maxProps bounds the properties kept with an event in the profile's
	// recent events: larger properties are read (products, revenue, path)
	// but not kept.
	maxProps = 4 << 10
)

// The Segment call types.
const (
	KindIdentify = "identify"
	KindTrack    = "track"
	KindPage     = "page"
	KindScreen   = "screen"
	KindGroup    = "group"
	KindAlias    = "alias"
	KindBatch    = "batch"
)

// A call is one valid Segment call, mapped to a tailor event.
type Call struct {
	Index       int // in the batch; -1 for a single call
	Kind        string
	Event       string // of a track call, as sent (Ev.Name may be mapped: "purchase")
	UserID      string
	AnonymousID string
	PreviousID  string // alias
	Ev          *store.Event
}

// A fieldError is what the collection endpoint answers about a call or a
// body it refuses, as JSON.
type FieldError struct {
	Status  int    `json:"-"`
	Index   int    `json:"-"`     // of the call in the batch, -1 for the body
	Code    string `json:"error"` // "invalid", "too_large", "forbidden", ...
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func Invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Status: http.StatusBadRequest, Index: -1, Code: "invalid", Field: field, Message: fmt.Sprintf(format, args...)}
}

func TooLarge(field, format string, args ...any) *FieldError {
	return &FieldError{Status: http.StatusRequestEntityTooLarge, Index: -1, Code: "too_large", Field: field, Message: fmt.Sprintf(format, args...)}
}

// parseCalls parses the body of a call to the endpoint of kind (a call
// type, or "batch") received at now. Calls need userId or anonymousId
// unless anonymous (browser calls: the cookie says who). It is pure: it
// returns the write key named in the body, the valid calls, one error for
// each invalid call (a valid call is never refused because of another),
// and fatal when the body as a whole is refused (malformed, too large, too
// deep). Strings of the calls do not alias body.
func ParseCalls(body []byte, kind string, anonymous bool, now time.Time) (writeKey string, calls []Call, errs []FieldError, fatal *FieldError) {
	limit := MaxEventBytes
	if kind == KindBatch {
		limit = MaxBatchBytes
	}
	if len(body) > limit {
		return "", nil, nil, TooLarge("", "the body is %d bytes; the limit is %d KB", len(body), limit>>10)
	}
	if !gjson.ValidBytes(body) {
		return "", nil, nil, Invalid("", "%s", syntaxError(body))
	}
	if !depthWithin(body, maxDepth) {
		return "", nil, nil, Invalid("", "JSON nested deeper than %d levels", maxDepth)
	}
	// The calls' strings are cloned from s where they are kept.
	s := unsafe.String(unsafe.SliceData(body), len(body))
	root := gjson.Parse(s)
	if !root.IsObject() {
		return "", nil, nil, Invalid("", "the body must be a JSON object")
	}
	if k := root.Get("writeKey"); k.Type == gjson.String {
		writeKey = strings.Clone(k.Str)
	}
	if kind != KindBatch {
		c, fe := parseCall(root, kind, -1, anonymous, callContext{}, time.Time{}, now, new(store.Event))
		if fe != nil {
			return writeKey, nil, []FieldError{*fe}, nil
		}
		return writeKey, []Call{c}, nil, nil
	}
	batch := root.Get("batch")
	switch {
	case !batch.Exists():
		return writeKey, nil, nil, Invalid("batch", "required")
	case !batch.IsArray():
		return writeKey, nil, nil, Invalid("batch", "must be an array")
	}
	n := 0
	batch.ForEach(func(_, _ gjson.Result) bool { n++; return true })
	if n > maxBatchEvents {
		return writeKey, nil, nil, TooLarge("batch", "%d events; the limit is %d", n, maxBatchEvents)
	}
	bctx := callContext{}.with(root.Get("context"))
	bsent, ok := sentTime(root.Get("sentAt"))
	if !ok {
		return writeKey, nil, nil, Invalid("sentAt", "not an ISO 8601 date and time")
	}
	calls = make([]Call, 0, n)
	evs := make([]store.Event, n) // one allocation for the events of the calls
	i := 0
	batch.ForEach(func(_, m gjson.Result) bool {
		c, fe := parseCall(m, "", i, anonymous, bctx, bsent, now, &evs[i])
		if fe != nil {
			fe.Index = i
			errs = append(errs, *fe)
		} else {
			calls = append(calls, c)
		}
		i++
		return true
	})
	return writeKey, calls, errs, nil
}

// callFields are the top-level fields of a call that tailor reads.
type callFields struct {
	typ, userID, anonymousID, previousID, groupID, event, name, category,
	messageID, timestamp, sentAt, properties, traits, context gjson.Result
}

// FieldPrefix begins the names of the fields of call index in errors:
// "batch[index]." in a batch, nothing for a single call (index -1).
func FieldPrefix(index int) string {
	if index < 0 {
		return ""
	}
	return "batch[" + strconv.Itoa(index) + "]."
}

// parseCall parses one call m of type kind ("" to read it from m's type
// field), the index-th of a batch (-1 for a single call).
func parseCall(m gjson.Result, kind string, index int, anonymous bool, bctx callContext, bsent, now time.Time, into *store.Event) (c Call, fe *FieldError) {
	defer func() {
		if fe != nil && index >= 0 {
			// Name the field in the batch; built only for errors.
			if fe.Field == "" {
				fe.Field = strings.TrimSuffix(FieldPrefix(index), ".")
			} else {
				fe.Field = FieldPrefix(index) + fe.Field
			}
		}
	}()
	if !m.IsObject() {
		return Call{}, Invalid("", "must be a JSON object")
	}
	if len(m.Raw) > MaxEventBytes {
		return Call{}, TooLarge("", "the event is %d bytes; the limit is %d KB", len(m.Raw), MaxEventBytes>>10)
	}
	var f callFields
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			f.typ = v
		case "userId":
			f.userID = v
		case "anonymousId":
			f.anonymousID = v
		case "previousId":
			f.previousID = v
		case "groupId":
			f.groupID = v
		case "event":
			f.event = v
		case "name":
			f.name = v
		case "category":
			f.category = v
		case "messageId":
			f.messageID = v
		case "timestamp":
			f.timestamp = v
		case "sentAt":
			f.sentAt = v
		case "properties":
			f.properties = v
		case "traits":
			f.traits = v
		case "context":
			f.context = v
		}
		return true
	})
	if kind == "" {
		if f.typ.Type != gjson.String {
			return Call{}, Invalid("type", "required: identify, track, page, screen, group or alias")
		}
		switch kind = f.typ.Str; kind {
		case KindIdentify, KindTrack, KindPage, KindScreen, KindGroup, KindAlias:
		default:
			return Call{}, Invalid("type", "%q is not identify, track, page, screen, group or alias", Truncate(kind, 40))
		}
	}
	c = Call{Index: index, Kind: kind, Ev: into}
	if c.UserID, fe = idField(f.userID, "userId", store.MaxUserIDLength); fe != nil {
		return Call{}, fe
	}
	if c.AnonymousID, fe = idField(f.anonymousID, "anonymousId", store.MaxUserIDLength); fe != nil {
		return Call{}, fe
	}
	switch {
	case kind == KindAlias:
		if c.PreviousID, fe = idField(f.previousID, "previousId", store.MaxUserIDLength); fe != nil {
			return Call{}, fe
		}
		if c.PreviousID == "" {
			return Call{}, Invalid("previousId", "required for alias")
		}
		if c.UserID == "" {
			return Call{}, Invalid("userId", "required for alias")
		}
	case c.UserID == "" && c.AnonymousID == "" && !anonymous:
		return Call{}, Invalid("userId", "userId or anonymousId is required")
	}
	var id string
	if id, fe = checkID(f.messageID, "messageId", maxMessageID); fe != nil {
		return Call{}, fe
	}
	if id != "" {
		c.Ev.ID = messageEventID(id, anonymous) // a copy
	}
	if c.Ev.Time, fe = callTime(f.timestamp, f.sentAt, bsent, now); fe != nil {
		return Call{}, fe
	}
	props := f.properties
	if props.Exists() && props.Type != gjson.Null && !props.IsObject() {
		return Call{}, Invalid("properties", "must be an object")
	}
	traits := f.traits
	if traits.Exists() && traits.Type != gjson.Null && !traits.IsObject() {
		return Call{}, Invalid("traits", "must be an object")
	}
	ctx := bctx
	if f.context.IsObject() {
		ctx = bctx.with(f.context)
	}
	var ev store.Event
	switch kind {
	case KindTrack:
		if f.event.Type != gjson.String || f.event.Str == "" {
			return Call{}, Invalid("event", "required for track")
		}
		if len(f.event.Str) > MaxName {
			return Call{}, Invalid("event", "%d bytes; the limit is %d", len(f.event.Str), MaxName)
		}
		c.Event = strings.Clone(f.event.Str)
		if ev, fe = trackFrom(c.Event, props, "properties."); fe != nil {
			return Call{}, fe
		}
	case KindPage, KindScreen:
		var name, cat string
		if name, fe = stringField(f.name, "name", MaxName); fe != nil {
			return Call{}, fe
		}
		if cat, fe = stringField(f.category, "category", MaxName); fe != nil {
			return Call{}, fe
		}
		ev = pageFrom(name, cat, props, &ctx)
		if ev.Path == "" && kind == KindScreen && name != "" {
			ev.Path = CutPath(name)
		}
	case KindIdentify:
		ev = store.Event{Type: store.TypeIdentify, UserID: c.UserID, Traits: rawObject(traits, 0)}
	case KindGroup:
		var g string
		if g, fe = idField(f.groupID, "groupId", store.MaxUserIDLength); fe != nil {
			return Call{}, fe
		}
		if g == "" {
			return Call{}, Invalid("groupId", "required for group")
		}
		ev = store.Event{Type: store.TypeIdentify, Name: KindGroup, Traits: groupTraits(g, traits)}
	case KindAlias:
		ev = store.Event{Type: store.TypeAlias, UserID: c.UserID}
	}
	if kind != KindPage && kind != KindScreen {
		// Where the event was sent from, for rules on UTM parameters.
		ev.Source, ev.Medium = ctxString(ctx.source), ctxString(ctx.medium)
		if c := ctxString(ctx.campaign); c != "" {
			ev.Campaign = c
		}
	}
	ev.ID, ev.Time = c.Ev.ID, c.Ev.Time
	*c.Ev = ev
	return c, nil
}

// The namespaces of messageIds. A messageId is the client's own choice,
// and a browser (any call without a write key) could send first the id
// that a server is about to give an order: the order would be dropped as a
// retry of the browser's call. So the event id of a server's messageId m
// is store.OpaqueID("s:"+m), and a browser's store.OpaqueID("b:"+m): they
// never collide, whatever m is, while a client that retries a call sends
// the same messageId from the same side and counts once. Browser calls
// record for the visitor of their cookie only, so a browser's ids meet
// only those of its own visitor's profile (or of its user's, once
// identified). Neither form is that of a forwarded event ("#"+profile
// id+">"+id): no profile id begins with "s:" or "b:".
const (
	serverMessageIDs  = "#s:"
	browserMessageIDs = "#b:"
)

// messageEventID returns the event id of the messageId id of a server
// call, or of a browser call when browser is set. The result does not
// alias id.
func messageEventID(id string, browser bool) string {
	if browser {
		return browserMessageIDs + id
	}
	return serverMessageIDs + id
}

// idField reads an id: a string, or a number (as Segment's libraries
// accept), at most max bytes of UTF-8 without control characters. An
// absent, null or empty id is "".
func idField(r gjson.Result, field string, max int) (string, *FieldError) {
	s, fe := checkID(r, field, max)
	if fe != nil || s == "" {
		return "", fe
	}
	return strings.Clone(s), nil
}

// checkID is idField without the copy: the id it returns may alias r.
func checkID(r gjson.Result, field string, max int) (string, *FieldError) {
	var s string
	switch r.Type {
	case gjson.Null:
		return "", nil
	case gjson.String:
		s = r.Str
	case gjson.Number:
		s = r.Raw
	default:
		return "", Invalid(field, "must be a string")
	}
	if len(s) > max {
		return "", Invalid(field, "%d bytes; the limit is %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return "", Invalid(field, "not valid UTF-8")
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return "", Invalid(field, "holds a control character")
		}
	}
	return s, nil
}

// stringField reads an optional string of at most max bytes.
func stringField(r gjson.Result, field string, max int) (string, *FieldError) {
	switch r.Type {
	case gjson.Null:
		return "", nil
	case gjson.String:
		if len(r.Str) > max {
			return "", Invalid(field, "%d bytes; the limit is %d", len(r.Str), max)
		}
		return strings.Clone(r.Str), nil
	}
	return "", Invalid(field, "must be a string")
}

// callTime returns the time of a call: its timestamp, corrected by the
// difference between now and the time the client sent it (its sentAt, or
// the batch's bsent), as Segment does; now without timestamp. A time after
// now is now: clients' clocks run ahead, and a future LastSeen would
// defeat retention.
func callTime(ts, sent gjson.Result, bsent, now time.Time) (time.Time, *FieldError) {
	if ts.Type == gjson.Null {
		return now, nil
	}
	t, ok := parseTime(ts)
	if !ok {
		return time.Time{}, Invalid("timestamp", "not an ISO 8601 date and time")
	}
	s, ok := sentTime(sent)
	if !ok {
		return time.Time{}, Invalid("sentAt", "not an ISO 8601 date and time")
	}
	if s.IsZero() {
		s = bsent
	}
	if !s.IsZero() {
		t = t.Add(now.Sub(s))
	}
	if t.After(now) {
		t = now
	}
	return t.UTC(), nil
}

// sentTime reads an optional sentAt: zero when absent.
func sentTime(r gjson.Result) (time.Time, bool) {
	if r.Type == gjson.Null {
		return time.Time{}, true
	}
	return parseTime(r)
}

func parseTime(r gjson.Result) (time.Time, bool) {
	if r.Type != gjson.String {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, r.Str)
	if err != nil || t.Year() < 1970 {
		return time.Time{}, false
	}
	return t, true
}

// properties are the Segment properties that tailor reads, found in one
// pass.
type properties struct {
	path, url, category, productID, referrer, campaign, revenue, total, products gjson.Result
}

func readProperties(r gjson.Result) (p properties) {
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "path":
			p.path = v
		case "url":
			p.url = v
		case "category":
			p.category = v
		case "product_id":
			p.productID = v
		case "referrer":
			p.referrer = v
		case "campaign":
			p.campaign = v
		case "revenue":
			p.revenue = v
		case "total":
			p.total = v
		case "products":
			p.products = v
		}
		return true
	})
	return p
}

// A callContext holds the parts of a Segment context that tailor reads:
// a batch's, with those of an event's own context over them.
type callContext struct {
	source, medium, campaign, pagePath, pageURL, pageReferrer, deviceType, userAgent gjson.Result
}

// with returns c with the fields that the context object r has.
func (c callContext) with(r gjson.Result) callContext {
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "campaign":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "source":
					c.source = v
				case "medium":
					c.medium = v
				case "name":
					c.campaign = v
				}
				return true
			})
		case "page":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "path":
					c.pagePath = v
				case "url":
					c.pageURL = v
				case "referrer":
					c.pageReferrer = v
				}
				return true
			})
		case "device":
			c.deviceType = v.Get("type")
		case "userAgent":
			c.userAgent = v
		}
		return true
	})
	return c
}

// trackFrom maps a Segment track call: "Order Completed" (or "purchase")
// is an order, its properties.products the items (product_id or id,
// category, price, quantity), properties.revenue or properties.total its
// revenue (else the fold adds up the items). The event keeps name: it
// must not alias a buffer.
func trackFrom(name string, props gjson.Result, prefix string) (store.Event, *FieldError) {
	ev := store.Event{Type: store.TypeTrack, Name: name, Props: rawObject(props, maxProps)}
	pr := readProperties(props)
	if c := pr.campaign; c.Type == gjson.String && len(c.Str) <= MaxName {
		ev.Campaign = strings.Clone(c.Str)
	}
	if !strings.EqualFold(name, "Order Completed") && name != store.EventPurchase {
		return ev, nil
	}
	ev.Name = store.EventPurchase
	if r, ok := number(pr.revenue); ok {
		ev.Revenue = r
	} else if r, ok := number(pr.total); ok {
		ev.Revenue = r
	}
	products := pr.products
	if !products.Exists() || products.Type == gjson.Null {
		return ev, nil
	}
	if !products.IsArray() {
		return store.Event{}, Invalid(prefix+"products", "must be an array")
	}
	var fe *FieldError
	i := 0
	products.ForEach(func(_, pr gjson.Result) bool {
		at := func() string { return prefix + "products[" + strconv.Itoa(i-1) + "]" }
		i++
		if i > maxProducts {
			fe = Invalid(prefix+"products", "more than %d products", maxProducts)
			return false
		}
		if !pr.IsObject() {
			fe = Invalid(at(), "must be an object")
			return false
		}
		var it store.Item
		var id, category, price, quantity gjson.Result
		pr.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "product_id":
				id = v
			case "id":
				if !id.Exists() {
					id = v
				}
			case "category":
				category = v
			case "price":
				price = v
			case "quantity":
				quantity = v
			}
			return true
		})
		if id.Type == gjson.Null {
			id = pr.Get("id")
		}
		if it.ID, fe = idField(id, "product_id", MaxName); fe != nil {
			fe.Field = at() + "." + fe.Field
			return false
		}
		if it.Category, fe = stringField(category, "category", MaxName); fe != nil {
			fe.Field = at() + "." + fe.Field
			return false
		}
		if price.Type != gjson.Null {
			var ok bool
			if it.Price, ok = number(price); !ok {
				fe = Invalid(at()+".price", "must be a number")
				return false
			}
		}
		if quantity.Type != gjson.Null {
			n, ok := number(quantity)
			if !ok || n < 0 || n > 1e6 || n != float64(int(n)) {
				fe = Invalid(at()+".quantity", "must be a whole number from 0 to 1000000")
				return false
			}
			it.Quantity = int(n)
		}
		ev.Items = append(ev.Items, it)
		return true
	})
	if fe != nil {
		return store.Event{}, fe
	}
	return ev, nil
}

// number reads a JSON number, or a string holding one.
func number(r gjson.Result) (float64, bool) {
	switch r.Type {
	case gjson.Number:
		return r.Num, true
	case gjson.String:
		f, err := strconv.ParseFloat(strings.TrimSpace(r.Str), 64)
		return f, err == nil
	}
	return 0, false
}

// pageFrom maps a Segment page or screen call: the path from
// properties.path, properties.url or the context's page; the category from
// properties.category or the call's; the referrer and the UTM parameters
// from properties or the context.
func pageFrom(name, category string, props gjson.Result, ctx *callContext) store.Event {
	ev := store.Event{Type: store.TypePage, Name: name, Props: rawObject(props, maxProps)}
	pr := readProperties(props)
	get := func(prop, ctx gjson.Result) string {
		if prop.Type == gjson.String && prop.Str != "" {
			return prop.Str
		}
		if ctx.Type == gjson.String {
			return ctx.Str
		}
		return ""
	}
	if path := get(pr.path, ctx.pagePath); path != "" {
		ev.Path = CutPath(path)
	} else if u := get(pr.url, ctx.pageURL); u != "" {
		if pu, err := url.Parse(u); err == nil {
			ev.Path = CutPath(pu.EscapedPath())
			if ev.Path == "" {
				ev.Path = "/"
			}
		}
	}
	if c := pr.category; c.Type == gjson.String && len(c.Str) <= MaxName {
		ev.Category = strings.Clone(c.Str)
	} else {
		ev.Category = category
	}
	if it := pr.productID; it.Type == gjson.String && len(it.Str) <= MaxName {
		ev.Item = strings.Clone(it.Str)
	}
	ev.Referrer = strings.Clone(reqfacts.RefererHost(get(pr.referrer, ctx.pageReferrer)))
	ev.Source, ev.Medium, ev.Campaign = ctxString(ctx.source), ctxString(ctx.medium), ctxString(ctx.campaign)
	if d := ctx.deviceType; d.Type == gjson.String {
		for _, dev := range reqfacts.Devices {
			if d.Str == dev {
				ev.Device = dev
			}
		}
	}
	if ua := ctx.userAgent; ev.Device == "" && ua.Type == gjson.String && ua.Str != "" {
		ev.Device = reqfacts.DeviceClass(ua.Str)
	}
	return ev
}

// PageEvent maps a page call made from Go, with its properties encoded.
func PageEvent(name, category string, props []byte) store.Event {
	return pageFrom(name, category, gjson.ParseBytes(props), &callContext{})
}

// MapTrack maps a track call made from Go, with its properties encoded.
func MapTrack(name string, props []byte) (store.Event, error) {
	ev, fe := trackFrom(strings.Clone(name), gjson.ParseBytes(props), "properties.")
	if fe != nil {
		return store.Event{}, fmt.Errorf("%s: %s", fe.Field, fe.Message)
	}
	return ev, nil
}

func ctxString(r gjson.Result) string {
	if r.Type != gjson.String || len(r.Str) > 100 {
		return ""
	}
	return strings.Clone(r.Str)
}

// cutPath returns path cut at maxPath bytes, on a character boundary.
func CutPath(path string) string {
	if len(path) > maxPath {
		path = strings.ToValidUTF8(path[:maxPath], "")
	}
	return strings.Clone(path)
}

// rawObject returns a copy of the JSON object r, or nil when r is not an
// object, is empty, or is larger than max bytes (max 0: no bound).
func rawObject(r gjson.Result, max int) json.RawMessage {
	if !r.IsObject() || (max > 0 && len(r.Raw) > max) {
		return nil
	}
	raw := strings.TrimSpace(r.Raw)
	if len(raw) <= 2 || strings.TrimSpace(raw[1:len(raw)-1]) == "" {
		return nil
	}
	return json.RawMessage(raw)
}

// groupTraits returns the traits of a group call: the group's traits and
// id under the trait "group".
func groupTraits(id string, traits gjson.Result) json.RawMessage {
	g := make(map[string]json.RawMessage)
	if raw := rawObject(traits, 0); raw != nil {
		json.Unmarshal(raw, &g) // valid: checked by gjson
	}
	g["id"] = gjson.AppendJSONString(nil, id)
	b, _ := json.Marshal(map[string]any{"group": g})
	return b
}

// depthWithin reports whether the arrays and objects of the JSON b nest
// at most max deep. Checked before parsing, so that no parser recurses
// deeper.
func depthWithin(b []byte, max int) bool {
	d := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			// Skip the string: to the next quote not escaped.
			for {
				j := bytes.IndexByte(b[i+1:], '"')
				if j < 0 {
					return true
				}
				i += j + 1
				n := 0
				for k := i - 1; b[k] == '\\'; k-- {
					n++
				}
				if n%2 == 0 {
					break
				}
			}
		case '{', '[':
			if d++; d > max {
				return false
			}
		case '}', ']':
			d--
		}
	}
	return true
}

// syntaxError describes what is wrong with the malformed JSON b, and
// where.
func syntaxError(b []byte) string {
	var v json.RawMessage
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	case err != nil:
		return "malformed JSON: " + err.Error()
	}
	return "malformed JSON"
}

// Truncate cuts s to n bytes, at a character boundary, marked with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// AnonProfileID returns the profile of a Segment anonymousId: the visitor,
// for a visitor id of tailor; "anon:"+id for the anonymous ids of other
// tools, which can never be taken for a visitor's or a user's.
func AnonProfileID(id string) string {
	if cookie.IsVisitorID(id) {
		return id
	}
	return "anon:" + id
}
