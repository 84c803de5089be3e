package middleware

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/gorilla/securecookie"

	"github.com/tailorhq/tailor/store"
)

// GenerateKeyPair returns a new random cookie key pair.
func GenerateKeyPair() KeyPair {
	return KeyPair{Hash: securecookie.GenerateRandomKey(32), Block: securecookie.GenerateRandomKey(32)}
}

// identity reads and writes the visitor cookie. Its value is a small binary
// payload (see payload.go) signed with HMAC-SHA256 and encrypted with AES-256
// by securecookie, without gob (NopEncoder): a raw payload decodes several
// microseconds faster.
type identity struct {
	name   string
	codecs []*securecookie.SecureCookie
	// seen caches cookie values that decoded, so that a returning visitor
	// costs a lookup instead of an HMAC and a decryption on every request.
	seen   *ristretto.Cache[string, seenCookie]
	maxAge time.Duration
	domain string
	secure bool
}

// seenCookie is a cookie value that decoded, and what it held.
type seenCookie struct {
	value   string // compared in full: the cache matches on hashes only
	id      string
	user    string
	renew   int64 // Unix nanoseconds from which it is renewed
	expires int64 // Unix nanoseconds from which it is refused
	rotated bool  // under an older key pair
}

// seenCookies is how many decoded cookie values are remembered.
const seenCookies = 20_000

func newIdentity(c *Config) *identity {
	id := &identity{name: c.CookieName, maxAge: c.CookieMaxAge, domain: c.CookieDomain, secure: c.Secure}
	for _, k := range c.Keys {
		sc := securecookie.New(k.Hash, k.Block)
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(int(c.CookieMaxAge / time.Second))
		sc.MaxLength(4096)
		id.codecs = append(id.codecs, sc)
	}
	id.seen, _ = ristretto.NewCache(&ristretto.Config[string, seenCookie]{
		NumCounters: seenCookies * 10, MaxCost: seenCookies, BufferItems: 64,
		IgnoreInternalCost: true,
	})
	return id
}

// cookieState says what came with a request.
type cookieState int

const (
	cookieNone     cookieState = iota // no cookie
	cookieValid                       // valid under the newest keys, fresh
	cookieRenew                       // valid, but under older keys, due for renewal (see renewAfter), or carrying a first visit
	cookieRejected                    // tampered, truncated, expired or foreign
)

// A cookieID is what a cookie says: the visitor id, and the user the
// visitor identified as, if any.
type cookieID struct {
	id, user string
}

// read returns what r's cookie says, and the first page view it carries,
// if any.
func (m *identity) read(r *http.Request, now time.Time) (cookieID, cookieState, *store.Event) {
	c, err := r.Cookie(m.name)
	if err != nil || c.Value == "" {
		return cookieID{}, cookieNone, nil
	}
	t := now.UnixNano()
	if e, ok := m.seen.Get(c.Value); ok && e.value == c.Value {
		if t >= e.expires {
			m.seen.Del(c.Value)
			return cookieID{}, cookieRejected, nil
		}
		if e.rotated || t >= e.renew {
			return cookieID{e.id, e.user}, cookieRenew, nil
		}
		return cookieID{e.id, e.user}, cookieValid, nil
	}
	for i, sc := range m.codecs {
		var b []byte
		if sc.Decode(m.name, c.Value, &b) != nil {
			continue
		}
		var pl payload
		if pl.unmarshal(b) != nil {
			return cookieID{}, cookieRejected, nil
		}
		issued := time.Unix(pl.issued, 0)
		expires := issued.Add(m.maxAge)
		if !now.Before(expires) {
			return cookieID{}, cookieRejected, nil
		}
		ci := cookieID{hex.EncodeToString(pl.id[:]), pl.user}
		if pl.first != nil {
			return ci, cookieRenew, pl.first // re-issued without it: not worth caching
		}
		e := seenCookie{value: c.Value, id: ci.id, user: ci.user, rotated: i > 0,
			renew: issued.Add(m.renewAfter()).UnixNano(), expires: expires.UnixNano()}
		m.seen.Set(c.Value, e, 1)
		if e.rotated || t >= e.renew {
			return ci, cookieRenew, nil
		}
		return ci, cookieValid, nil
	}
	return cookieID{}, cookieRejected, nil
}

// cookie returns the cookie for visitor ci, carrying first if not nil.
// When the value would be too long with first (a long user id and long
// first page facts), first is left out: the view is lost, not the visitor.
func (m *identity) cookie(ci cookieID, first *store.Event, r *http.Request, now time.Time) (*http.Cookie, error) {
	pl := payload{issued: now.Unix(), user: ci.user, first: first}
	if _, err := hex.Decode(pl.id[:], []byte(ci.id)); err != nil {
		return nil, err
	}
	// marshal returns a fresh slice: securecookie encrypts it in place.
	v, err := m.codecs[0].Encode(m.name, pl.marshal())
	if err != nil && first != nil {
		pl.first = nil
		v, err = m.codecs[0].Encode(m.name, pl.marshal())
	}
	if err != nil {
		return nil, err
	}
	return &http.Cookie{
		Name: m.name, Value: v, Path: "/", Domain: m.domain,
		MaxAge: int(m.maxAge / time.Second), HttpOnly: true,
		Secure: m.secure || r.TLS != nil, SameSite: http.SameSiteLaxMode,
	}, nil
}

// expired returns a cookie that deletes the visitor cookie.
func (m *identity) expired(r *http.Request) *http.Cookie {
	return &http.Cookie{Name: m.name, Value: "", Path: "/", Domain: m.domain, MaxAge: -1,
		HttpOnly: true, Secure: m.secure || r.TLS != nil, SameSite: http.SameSiteLaxMode}
}

// renewAfter is the age from which a valid cookie is re-issued: a day, or
// half the max age if that is shorter, so that a visitor who comes back
// keeps the cookie.
func (m *identity) renewAfter() time.Duration { return min(24*time.Hour, m.maxAge/2) }

// newID returns a random 128-bit visitor id in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
