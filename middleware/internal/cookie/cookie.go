// Package cookie reads and writes tailor's visitor cookie: a small binary
// payload (the visitor id, the user they identified as, the time it was
// issued and, for a new visitor, their first page view) signed with
// HMAC-SHA256 and encrypted with AES-256 in securecookie's format, without
// gob (NopEncoder): a raw payload decodes several microseconds faster.
// securecookie reads the values; they are sealed here (see sealer). Keys
// rotate: the newest pair issues, older pairs are still read.
package cookie

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/tailorhq/tailor/store"
)

// A Key is a pair of cookie keys: Hash signs (32 or 64 bytes), Block
// encrypts (32 bytes).
type Key struct{ Hash, Block []byte }

// Config is what a Codec needs to know of the visitor cookie.
type Config struct {
	Name   string
	MaxAge time.Duration
	Domain string
	Secure bool  // set Secure even on requests that did not come over TLS
	Keys   []Key // newest first
}

// A Codec reads and writes the visitor cookie. It is safe for concurrent
// use.
type Codec struct {
	name   string
	codecs []*securecookie.SecureCookie
	// values are the codecs of Encode and Decode: the same keys without
	// securecookie's age limit, as those values carry their own expiry,
	// which may be later than the visitor cookie's MaxAge.
	values []*securecookie.SecureCookie
	// seal makes the values of the newest key pair, as its codecs would;
	// sealErr is why it could not be made from that pair, if so.
	seal    *sealer
	prefix  string // name "="
	sealErr error
	// attrs are the attributes of the Set-Cookie header after the value,
	// as (*http.Cookie).String writes them: [0] without Secure, [1] with.
	// expired are the whole headers of Expired, the same way.
	attrs, expired [2]string
	// seen caches cookie values that decoded, so that a returning visitor
	// costs a lookup instead of an HMAC and a decryption on every request.
	seen   *seenCache
	maxAge time.Duration
	domain string
	secure bool
}

// seenCookie is a cookie value that decoded, and what it held.
type seenCookie struct {
	value   string // compared in full
	hash    uint64 // of value, in the cache
	id      string
	user    string
	renew   int64 // Unix nanoseconds from which it is renewed
	expires int64 // Unix nanoseconds from which it is refused
	rotated bool  // under an older key pair
	// hint is the caller's, kept with the value (see ReadHint).
	hint atomic.Value
}

// seenCookies is how many decoded cookie values are remembered.
const seenCookies = 32_768

// New returns the Codec of c. Close it when done.
func New(c Config) *Codec {
	id := &Codec{name: c.Name, prefix: c.Name + "=", maxAge: c.MaxAge, domain: c.Domain, secure: c.Secure}
	for _, k := range c.Keys {
		sc := securecookie.New(k.Hash, k.Block)
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(int(c.MaxAge / time.Second))
		sc.MaxLength(4096)
		id.codecs = append(id.codecs, sc)
		vc := securecookie.New(k.Hash, k.Block)
		vc.SetSerializer(securecookie.NopEncoder{})
		vc.MaxAge(0)
		vc.MaxLength(4096)
		id.values = append(id.values, vc)
	}
	if len(c.Keys) == 0 {
		id.sealErr = errNoKeys
	} else if len(c.Keys[0].Hash) == 0 {
		id.sealErr = errNoHashKey
	} else {
		id.seal, id.sealErr = newSealer(c.Keys[0])
	}
	for i, secure := range []bool{false, true} {
		ck := id.cookie("", secure)
		if a := ck.String(); a != "" {
			id.attrs[i] = a[len(ck.Name)+1:]
		}
		ck.Value, ck.MaxAge = "", -1
		id.expired[i] = ck.String()
	}
	id.seen = newSeenCache(seenCookies)
	return id
}

var (
	errNoKeys    = errors.New("tailor: no cookie keys")
	errNoHashKey = errors.New("securecookie: hash key is not set")
	errVisitorID = errors.New("tailor: malformed visitor id")
)

// State says what came with a request.
type State int

const (
	None     State = iota // no cookie
	Valid                 // valid under the newest keys, fresh
	Renew                 // valid, but under older keys, due for renewal (see renewAfter), or carrying a first visit
	Rejected              // tampered, truncated, expired or foreign
)

// An ID is what a cookie says: the visitor id, and the user the visitor
// identified as, if any.
type ID struct {
	Visitor, User string
}

// Read returns what r's cookie says, and the first page view it carries,
// if any.
func (m *Codec) Read(r *http.Request, now time.Time) (ID, State, *store.Event) {
	ci, cs, first, _ := m.ReadHint(r, now)
	return ci, cs, first
}

// ReadHint is Read, also returning a place that the caller may keep
// something in with the cookie's value while it is cached, to find it
// again when the same value comes back: the cache of decoded values is
// bounded, so the place may be gone at any time (then the next ReadHint
// of the value returns a new, empty one). It is nil when the value is
// not cached.
func (m *Codec) ReadHint(r *http.Request, now time.Time) (ID, State, *store.Event, *atomic.Value) {
	t := now.UnixNano()
	// The first cookie called name is the one Value finds if it is
	// valid, and it is if it is cached: only values that Value returned
	// and that decoded are. A cached cookie costs no pass over its bytes.
	first, ok := value(r.Header, m.name, false)
	if !ok {
		return ID{}, None, nil, nil
	}
	if e, ok := m.seen.Get(first); ok {
		return m.cached(e, t)
	}
	value, ok := Value(r.Header, m.name)
	if !ok || value == "" {
		return ID{}, None, nil, nil
	}
	if value != first {
		if e, ok := m.seen.Get(value); ok {
			return m.cached(e, t)
		}
	}
	for i, sc := range m.codecs {
		var b []byte
		if sc.Decode(m.name, value, &b) != nil {
			continue
		}
		var pl payload
		if pl.unmarshal(b) != nil {
			return ID{}, Rejected, nil, nil
		}
		issued := time.Unix(pl.issued, 0)
		expires := issued.Add(m.maxAge)
		if !now.Before(expires) {
			return ID{}, Rejected, nil, nil
		}
		ci := ID{hex.EncodeToString(pl.id[:]), pl.user}
		if pl.first != nil {
			return ci, Renew, pl.first, nil // re-issued without it: not worth caching
		}
		e := &seenCookie{value: value, id: ci.Visitor, user: ci.User, rotated: i > 0,
			renew: issued.Add(m.renewAfter()).UnixNano(), expires: expires.UnixNano()}
		m.seen.Set(value, e)
		if e.rotated || t >= e.renew {
			return ci, Renew, nil, &e.hint
		}
		return ci, Valid, nil, &e.hint
	}
	return ID{}, Rejected, nil, nil
}

// cached returns what the cached cookie e says at t (Unix nanoseconds),
// and forgets it once expired.
func (m *Codec) cached(e *seenCookie, t int64) (ID, State, *store.Event, *atomic.Value) {
	if t >= e.expires {
		m.seen.Del(e.value)
		return ID{}, Rejected, nil, nil
	}
	if e.rotated || t >= e.renew {
		return ID{e.id, e.user}, Renew, nil, &e.hint
	}
	return ID{e.id, e.user}, Valid, nil, &e.hint
}

// Value returns the value of the first valid cookie called name in the
// Cookie headers of h, as (*http.Request).Cookie finds it, without
// parsing the other cookies into values of their own: it allocates
// nothing. name must be a valid cookie name.
func Value(h http.Header, name string) (string, bool) { return value(h, name, true) }

// value returns the value of the first cookie called name, only among
// valid values if valid.
func value(h http.Header, name string, valid bool) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(trim(part), "=")
			if trim(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if !valid || validValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// trim removes the spaces, tabs, carriage returns and line feeds around
// s, as strings.Trim(s, " \t\r\n") does, without building the set.
func trim(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// validValue reports whether every byte of a cookie value is one that
// net/http accepts: none below 0x20 or from 0x7f, no '"', ';' or '\\'.
// It tests eight bytes at a time: a visitor cookie is a few hundred.
func validValue(v string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64([]byte(v[:8]))
		// A byte below 0x20, one from 0x7f, or one equal to '"', ';'
		// or '\\' (zero once xored with it) sets its high bit in bad.
		// Borrows and carries only cross from a byte already found.
		q, s, b := x^('"'*ones), x^(';'*ones), x^('\\'*ones)
		bad := (x-0x20*ones)&^x | (x + ones) | x |
			(q-ones)&^q | (s-ones)&^s | (b-ones)&^b
		if bad&highs != 0 {
			return false
		}
		v = v[8:]
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// Cookie returns the cookie for visitor ci, carrying first if not nil.
// When the value would be too long with first (a long user id and long
// first page facts), first is left out: the view is lost, not the visitor.
func (m *Codec) Cookie(ci ID, first *store.Event, r *http.Request, now time.Time) (*http.Cookie, error) {
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	b, n, err := m.appendValue((*bp)[:0], "", ci, first, now)
	*bp = b
	if err != nil {
		return nil, err
	}
	return m.cookie(string(b[n:]), m.secure || r.TLS != nil), nil
}

// SetCookie returns the Set-Cookie header of the cookie that Cookie
// returns, as its String method writes it, in one string: the
// attributes are known to be valid, and written once in New.
func (m *Codec) SetCookie(ci ID, first *store.Event, r *http.Request, now time.Time) (string, error) {
	attrs := m.attrs[0]
	if m.secure || r.TLS != nil {
		attrs = m.attrs[1]
	}
	if attrs == "" {
		return "", nil // not a valid cookie name: (*http.Cookie).String writes nothing
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	b, n, err := m.appendValue((*bp)[:0], m.prefix, ci, first, now)
	if err == nil {
		b = append(b, attrs...)
	}
	*bp = b
	if err != nil {
		return "", err
	}
	return string(b[n:]), nil
}

// appendValue writes into b, from its start, the payload of ci and
// first, then prefix and the cookie value sealed from the payload, and
// returns it with the index where prefix starts. A visitor id that is not
// 32 hex digits is an error (it would not fit the payload's 16 bytes).
func (m *Codec) appendValue(b []byte, prefix string, ci ID, first *store.Event, now time.Time) (_ []byte, n int, err error) {
	if m.seal == nil {
		return b, 0, m.sealErr
	}
	pl := payload{issued: now.Unix(), user: ci.User, first: first}
	if len(ci.Visitor) != 2*len(pl.id) {
		return b, 0, errVisitorID
	}
	if _, err := hex.Decode(pl.id[:], []byte(ci.Visitor)); err != nil {
		return b, 0, err
	}
	for {
		b = pl.appendTo(b[:0])
		n = len(b)
		b = append(b, prefix...)
		// securecookie dates its values by the clock, not by now.
		b, err = m.seal.appendSeal(b, m.name, b[:n], time.Now())
		if err == nil || pl.first == nil {
			return b, n, err
		}
		pl.first = nil
	}
}

// Expired returns a cookie that deletes the visitor cookie.
func (m *Codec) Expired(r *http.Request) *http.Cookie {
	c := m.cookie("", m.secure || r.TLS != nil)
	c.MaxAge = -1
	return c
}

// ExpiredHeader returns the Set-Cookie header of the cookie that Expired
// returns.
func (m *Codec) ExpiredHeader(r *http.Request) string {
	if m.secure || r.TLS != nil {
		return m.expired[1]
	}
	return m.expired[0]
}

// cookie returns the visitor cookie with value.
func (m *Codec) cookie(value string, secure bool) *http.Cookie {
	return &http.Cookie{
		Name: m.name, Value: value, Path: "/", Domain: m.domain,
		MaxAge: int(m.maxAge / time.Second), HttpOnly: true,
		Secure: secure, SameSite: http.SameSiteLaxMode,
	}
}

// renewAfter is the age from which a valid cookie is re-issued: a day, or
// half the max age if that is shorter, so that a visitor who comes back
// keeps the cookie.
func (m *Codec) renewAfter() time.Duration { return min(24*time.Hour, m.maxAge/2) }

// Close releases the cache of decoded cookies.
func (m *Codec) Close() { m.seen.Close() }

// Encode signs and encrypts b under name with the newest keys, for other
// values that travel as cookies or links (previews). The value does not
// expire with the visitor cookie's MaxAge: b must carry its own expiry.
func (m *Codec) Encode(name string, b []byte) (string, error) {
	if m.seal == nil {
		return "", m.sealErr
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	v, err := m.seal.appendSeal((*bp)[:0], name, b, time.Now())
	*bp = v
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// Decode returns the value that Encode made of name, under any key.
func (m *Codec) Decode(name, value string) ([]byte, bool) {
	for _, sc := range m.values {
		var b []byte
		if sc.Decode(name, value, &b) == nil {
			return b, true
		}
	}
	return nil, false
}

// NewID returns a random 128-bit visitor id in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// IsVisitorID reports whether s has the form of a visitor id: 32
// lower-case hex digits.
func IsVisitorID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
