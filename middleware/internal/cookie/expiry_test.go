package cookie

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

// A cookie is accepted until exactly CookieMaxAge after it was issued,
// and refused from then on, whether it is read from the cache of decoded
// cookies or decoded afresh — also when the max age is not a whole number
// of days.
func TestCookieExpiresAtMaxAge(t *testing.T) {
	t.Parallel()
	keys := []Key{{Hash: []byte("0123456789abcdef0123456789abcdef"), Block: []byte("fedcba9876543210fedcba9876543210")}}
	for _, maxAge := range []time.Duration{36 * time.Hour, 90 * time.Minute, 400 * 24 * time.Hour} {
		cfg := Config{Keys: keys, Name: "tailor", MaxAge: maxAge}
		issuer := New(cfg)
		defer issuer.seen.Close()
		// Issued at 01:00:00.7 UTC: the cookie says 01:00:00, and its age
		// counts from there.
		issued := time.Date(2026, 6, 1, 1, 0, 0, 7e8, time.UTC)
		ck, err := issuer.Cookie(ID{Visitor: NewID()}, nil, httptest.NewRequest("GET", "/", nil), issued)
		if err != nil {
			t.Fatal(err)
		}
		stamp := issued.Truncate(time.Second)
		renew, expires := stamp.Add(min(24*time.Hour, maxAge/2)), stamp.Add(maxAge)
		for _, tc := range []struct {
			at   time.Time
			want State
		}{
			{issued, Valid},
			{renew.Add(-time.Nanosecond), Valid},
			{renew, Renew},
			{expires.Add(-time.Nanosecond), Renew},
			{expires, Rejected},
			{expires.Add(12 * time.Hour), Rejected},
		} {
			// cached: the decoded cookie is in the cache before it is read.
			cached := New(cfg)
			cached.Read(cookieRequest(ck), issued)
			if _, ok := cached.seen.Get(ck.Value); !ok {
				t.Fatal("the decoded cookie was not cached")
			}
			fresh := New(cfg)
			for name, m := range map[string]*Codec{"cached": cached, "decoded": fresh} {
				if _, got, _ := m.Read(cookieRequest(ck), tc.at); got != tc.want {
					t.Errorf("max age %v, %s, %v after the issue: state %d, want %d", maxAge, name, tc.at.Sub(issued), got, tc.want)
				}
			}
			cached.seen.Close()
			fresh.seen.Close()
		}
	}
}

// Cookies issued before their payload carried the issue time to the
// second (version 2: the issue day) count their age from the start of
// that day.
func TestCookieVersion2Expiry(t *testing.T) {
	t.Parallel()
	keys := []Key{{Hash: []byte("0123456789abcdef0123456789abcdef"), Block: []byte("fedcba9876543210fedcba9876543210")}}
	m := New(Config{Keys: keys, Name: "tailor", MaxAge: 36 * time.Hour})
	defer m.seen.Close()
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	b := (&payload{id: [16]byte{1}}).marshal()
	b[0] = 2
	b[17], b[18], b[19], b[20] = 0, 0, byte(day.Unix()/86400>>8), byte(day.Unix()/86400)
	sc := securecookie.New(keys[0].Hash, keys[0].Block)
	sc.SetSerializer(securecookie.NopEncoder{})
	v, err := sc.Encode("tailor", b)
	if err != nil {
		t.Fatal(err)
	}
	ck := &http.Cookie{Name: "tailor", Value: v}
	if _, got, _ := m.Read(cookieRequest(ck), day.Add(23*time.Hour)); got != Renew {
		t.Errorf("23h into its day: state %d, want %d (renew)", got, Renew)
	}
	if _, got, _ := m.Read(cookieRequest(ck), day.Add(36*time.Hour)); got != Rejected {
		t.Errorf("36h after its day began: state %d, want %d (rejected)", got, Rejected)
	}
}

func cookieRequest(ck *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(ck)
	return r
}
