package cookie

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Read takes the first valid cookie of the name, whether it is cached or
// decoded afresh: an invalid one before it is passed over, a valid one
// that does not decode is rejected, quotes are taken off.
func TestReadFirstValidCookie(t *testing.T) {
	t.Parallel()
	m := New(Config{Name: "tailor", MaxAge: time.Hour, Keys: []Key{testKey}})
	defer m.Close()
	now := time.Now()
	ci := ID{Visitor: NewID(), User: "u"}
	ck, err := m.Cookie(ci, nil, httptest.NewRequest("GET", "/", nil), now)
	if err != nil {
		t.Fatal(err)
	}
	for _, cached := range []bool{false, true} {
		if cached {
			m.Read(cookieRequest(ck), now)
			if _, ok := m.seen.Get(ck.Value); !ok {
				t.Fatal("the cookie was not cached")
			}
		}
		for _, tc := range []struct {
			header string
			want   State
		}{
			{"tailor=" + ck.Value, Valid},
			{"a=b; tailor=\"" + ck.Value + "\"; c=d", Valid},
			{"tailor=\x7f" + ck.Value + "; tailor=" + ck.Value, Valid},
			{"tailor=" + ck.Value + "\\; tailor=" + ck.Value, Valid},
			{"tailor=" + ck.Value[1:] + "; tailor=" + ck.Value, Rejected},
			{"tailor=; tailor=" + ck.Value, None},
			{"tailors=" + ck.Value, None},
		} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", tc.header)
			got, state, _ := m.Read(r, now)
			if state != tc.want || state == Valid && got != ci {
				t.Errorf("cached %v, %q: %+v, state %d; want state %d", cached, tc.header, got, state, tc.want)
			}
		}
	}
}

// BenchmarkRead measures a returning visitor's cookie, decoded before and
// so cached, among 100 visitors taking turns.
func BenchmarkRead(b *testing.B) {
	m := New(Config{Name: "tailor", MaxAge: 400 * 24 * time.Hour, Keys: []Key{testKey}})
	defer m.Close()
	now := time.Now()
	reqs := make([]*http.Request, 100)
	for i := range reqs {
		ck, err := m.Cookie(ID{Visitor: NewID(), User: "user@example.com"}, nil, httptest.NewRequest("GET", "/", nil), now)
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = httptest.NewRequest("GET", "/", nil)
		reqs[i].Header.Set("Cookie", "_ga=GA1.1.1234567890.1234567890; "+ck.String()[:len(ck.Name)+1+len(ck.Value)]+"; theme=dark")
		if _, state, _ := m.Read(reqs[i], now); state != Valid {
			b.Fatalf("state %d", state)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, state, _ := m.Read(reqs[i%len(reqs)], now); state != Valid {
			b.Fatalf("state %d", state)
		}
		i++
	}
}

// BenchmarkValue measures finding the visitor cookie among others.
func BenchmarkValue(b *testing.B) {
	h := http.Header{"Cookie": {"_ga=GA1.1.1234567890.1234567890; tailor=" + string(make([]byte, 0)) +
		"TVRjMU5qUXhNakk1TjN4RmRGUTVOMnhxV0ZSNFJuZGFTMDVNVEhkNFFuTjFaVTlLZGpWdk1rWkRXa0pHYVhOWlR6bFRXbkpmTlRSZk5uaEtWRE5oTVRGVmFYcERhbXROV0VvNE5WVkRWV3hOV0VKRlRVbDJaWEJNZWxGeGJWVmxOMFZ3UlZkRGJuWTNZWGhJTUhSUWRXVTllQzFRZ2JOS0dKc0VJd05pOHBtNVhReGo0N3p1RHkyTFBVZ0pUQW1HRlc2Zz09; theme=dark"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Value(h, "tailor"); !ok {
			b.Fatal("no value")
		}
	}
}
