package cookie

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/tailorhq/tailor/store"
)

var (
	testKey  = Key{Hash: []byte("0123456789abcdef0123456789abcdef"), Block: []byte("fedcba9876543210fedcba9876543210")}
	otherKey = Key{Hash: []byte("abcdef0123456789abcdef0123456789"), Block: []byte("76543210fedcba9876543210fedcba98")}
)

// reader is how the values are read: securecookie itself.
func reader(k Key) *securecookie.SecureCookie {
	sc := securecookie.New(k.Hash, k.Block)
	sc.SetSerializer(securecookie.NopEncoder{})
	sc.MaxLength(4096)
	return sc
}

func mustSealer(t testing.TB, k Key) *sealer {
	s, err := newSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Sealed values are securecookie's: its Decode reads them under the same
// keys and name, and refuses them under other keys, another name, or
// once any byte of what they encode is changed.
func TestSealDecodesWithSecurecookie(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, testKey)
	// securecookie cannot decrypt an empty value: no test with 0 bytes.
	for _, n := range []int{1, 15, 16, 17, 31, 32, 33, 100, 1000, 2200} {
		plain := bytes.Repeat([]byte{byte(n), 0xa5}, n)[:n]
		orig := bytes.Clone(plain)
		v, err := s.appendSeal(nil, "tailor", plain, time.Now())
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(plain, orig) {
			t.Fatalf("%d bytes: sealing changed the plain value", n)
		}
		var got []byte
		if err := reader(testKey).Decode("tailor", string(v), &got); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: decoded %x, %v; want %x", n, got, err, plain)
		}
		if reader(otherKey).Decode("tailor", string(v), &got) == nil {
			t.Errorf("%d bytes: decoded under other keys", n)
		}
		if reader(testKey).Decode("tailors", string(v), &got) == nil {
			t.Errorf("%d bytes: decoded under another name", n)
		}
		outer, err := base64.URLEncoding.DecodeString(string(v))
		if err != nil {
			t.Fatal(err)
		}
		for i := range outer {
			tampered := bytes.Clone(outer)
			tampered[i] ^= 0x04
			if reader(testKey).Decode("tailor", base64.URLEncoding.EncodeToString(tampered), &got) == nil {
				t.Fatalf("%d bytes: decoded with byte %d of %d changed", n, i, len(outer))
			}
		}
	}
}

// A value longer than securecookie's MaxLength is refused as Encode
// refuses it, and the value just short of it is made.
func TestSealMaxLength(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, testKey)
	sc := reader(testKey)
	longest := -1
	for n := 2150; n < 2350; n++ {
		now := time.Now()
		v, err := s.appendSeal(nil, "tailor", make([]byte, n), now)
		want, werr := sc.Encode("tailor", make([]byte, n))
		if now.Unix() != time.Now().Unix() {
			n-- // a second passed between the two: its date may be longer
			continue
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%d bytes: sealed %v, securecookie %v", n, err, werr)
		}
		if err != nil {
			if err.Error() != werr.Error() {
				t.Errorf("%d bytes: error %q, securecookie's %q", n, err, werr)
			}
			break
		}
		if len(v) != len(want) || len(v) > maxLength {
			t.Fatalf("%d bytes: %d long, securecookie's %d", n, len(v), len(want))
		}
		longest = n
	}
	if longest < 0 || longest >= 2349 {
		t.Fatalf("longest value sealed: %d bytes", longest)
	}
}

// FuzzSeal: for any name and value, securecookie decodes what is sealed
// exactly as it decodes what its own Encode makes of it: to the value,
// or, for an empty value, which it cannot decrypt, not at all.
func FuzzSeal(f *testing.F) {
	f.Add("tailor", []byte{})
	f.Add("tailor_preview", []byte("some preview token"))
	f.Add("a|b", bytes.Repeat([]byte{0xff}, 200))
	s := mustSealer(f, testKey)
	f.Fuzz(func(t *testing.T, name string, plain []byte) {
		sc := reader(testKey)
		v, err := s.appendSeal(nil, name, plain, time.Now())
		want, werr := sc.Encode(name, bytes.Clone(plain))
		if (err == nil) != (werr == nil) {
			t.Fatalf("sealed: %v; securecookie: %v", err, werr)
		}
		if err != nil {
			return
		}
		var got, wantGot []byte
		gerr := sc.Decode(name, string(v), &got)
		werr = sc.Decode(name, want, &wantGot)
		if (gerr == nil) != (werr == nil) || !bytes.Equal(got, wantGot) || gerr == nil && !bytes.Equal(got, plain) || len(plain) > 0 && gerr != nil {
			t.Fatalf("decoded %x (%v), securecookie's own %x (%v); want %x", got, gerr, wantGot, werr, plain)
		}
		if len(v) != len(want) {
			t.Fatalf("%d long, securecookie's %d", len(v), len(want))
		}
	})
}

// Random payloads of visitor cookies, as Cookie seals them, read back the
// same through securecookie and through Read.
func TestSealRandomPayloads(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	str := func(max int) string {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return string(b)
	}
	m := New(Config{Name: "tailor", MaxAge: time.Hour, Keys: []Key{testKey}})
	defer m.Close()
	r := httptest.NewRequest("GET", "/", nil)
	for range 300 {
		ci := ID{Visitor: NewID(), User: str(store.MaxUserIDLength)}
		var first *store.Event
		if rng.IntN(2) == 0 {
			first = &store.Event{Type: store.TypePage, Time: time.UnixMilli(rng.Int64N(1 << 42)).UTC(), Device: devices[rng.IntN(len(devices))],
				Path: str(250), Category: str(30), Item: str(30), Referrer: str(100), Source: str(20), Medium: str(20), Campaign: str(20)}
		}
		now := time.Now()
		ck, err := m.Cookie(ci, first, r, now)
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		if err := reader(testKey).Decode("tailor", ck.Value, &b); err != nil {
			t.Fatal(err)
		}
		want := payload{issued: now.Unix(), user: ci.User, first: first}
		id, _ := hex.DecodeString(ci.Visitor)
		copy(want.id[:], id)
		if !bytes.Equal(b, want.marshal()) {
			t.Fatalf("payload %x, want %x", b, want.marshal())
		}
		got, state, gotFirst := m.Read(cookieRequest(ck), now)
		if got != ci || state == Rejected || state == None || (first == nil) != (gotFirst == nil) {
			t.Fatalf("read %+v, state %d, first %v; want %+v", got, state, gotFirst, ci)
		}
		if first != nil && (gotFirst.Path != cut(first.Path) || gotFirst.Campaign != first.Campaign || !gotFirst.Time.Equal(first.Time)) {
			t.Fatalf("first page view %+v, want %+v", gotFirst, first)
		}
	}
}

// Values that securecookie's Encode made, before cookies were sealed
// here, are still read.
func TestReadSecurecookieValues(t *testing.T) {
	t.Parallel()
	m := New(Config{Name: "tailor", MaxAge: time.Hour, Keys: []Key{testKey}})
	defer m.Close()
	now := time.Now()
	pl := payload{id: [16]byte{0xab, 1}, issued: now.Unix(), user: "u@example.com",
		first: &store.Event{Path: "/p", Device: "mobile", Time: now.Truncate(time.Millisecond).UTC()}}
	sc := reader(testKey)
	v, err := sc.Encode("tailor", pl.marshal())
	if err != nil {
		t.Fatal(err)
	}
	ci, state, first := m.Read(cookieRequest(&http.Cookie{Name: "tailor", Value: v}), now)
	if ci.Visitor != "ab010000000000000000000000000000" || ci.User != "u@example.com" || state != Renew || first == nil || first.Path != "/p" {
		t.Fatalf("read %+v, state %d, first %+v", ci, state, first)
	}
	// And preview tokens.
	pv, err := sc.Encode("tailor_preview", []byte("token"))
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := m.Decode("tailor_preview", pv); !ok || string(b) != "token" {
		t.Fatalf("decoded %q, %v", b, ok)
	}
}

// Keys rotate: the newest pair seals, older pairs are still read (and
// their cookies renewed), pairs no longer configured are not.
func TestSealKeyRotation(t *testing.T) {
	t.Parallel()
	before := New(Config{Name: "tailor", MaxAge: time.Hour, Keys: []Key{otherKey}})
	rotated := New(Config{Name: "tailor", MaxAge: time.Hour, Keys: []Key{testKey, otherKey}})
	after := New(Config{Name: "tailor", MaxAge: time.Hour, Keys: []Key{testKey}})
	for _, m := range []*Codec{before, rotated, after} {
		defer m.Close()
	}
	r := httptest.NewRequest("GET", "/", nil)
	now := time.Now()
	ci := ID{Visitor: NewID()}
	old, err := before.Cookie(ci, nil, r, now)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := rotated.Cookie(ci, nil, r, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    *Codec
		ck   *http.Cookie
		want State
	}{
		{rotated, old, Renew},
		{rotated, fresh, Valid},
		{after, fresh, Valid},
		{after, old, Rejected},
		{before, fresh, Rejected},
	} {
		if got, state, _ := tc.m.Read(cookieRequest(tc.ck), now); state != tc.want || state != Rejected && got != ci {
			t.Errorf("read %+v, state %d; want %+v, state %d", got, state, ci, tc.want)
		}
	}
	tok, err := rotated.Encode("tailor_preview", []byte("token"))
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := after.Decode("tailor_preview", tok); !ok || string(b) != "token" {
		t.Errorf("preview token under the newest keys: %q, %v", b, ok)
	}
	if _, ok := before.Decode("tailor_preview", tok); ok {
		t.Error("preview token decoded under keys it was not sealed with")
	}
}

// xorCTR is cipher.NewCTR's key stream, counter carries included.
func TestXORCTR(t *testing.T) {
	t.Parallel()
	block, err := aes.NewCipher(testKey.Block)
	if err != nil {
		t.Fatal(err)
	}
	ivs := [][]byte{
		make([]byte, 16),
		bytes.Repeat([]byte{0xff}, 16),
		append(bytes.Repeat([]byte{1}, 8), bytes.Repeat([]byte{0xff}, 8)...),
		append(bytes.Repeat([]byte{2}, 15), 0xfe),
	}
	for _, iv := range ivs {
		for n := range 100 {
			data := bytes.Repeat([]byte{0x5a, 0x01, 0xc3}, n)[:n]
			want := make([]byte, n)
			cipher.NewCTR(block, iv).XORKeyStream(want, data)
			got := bytes.Clone(data)
			xorCTR(block, iv, make([]byte, 16), make([]byte, 16), got)
			if !bytes.Equal(got, want) {
				t.Fatalf("iv %x, %d bytes: %x, want %x", iv, n, got, want)
			}
		}
	}
}

// The Set-Cookie headers are what (*http.Cookie).String writes of the
// same cookies.
func TestSetCookieHeader(t *testing.T) {
	t.Parallel()
	plain := httptest.NewRequest("GET", "/", nil)
	tls := httptest.NewRequest("GET", "https://example.com/", nil)
	for _, cfg := range []Config{
		{Name: "tailor", MaxAge: 400 * 24 * time.Hour},
		{Name: "tailor", MaxAge: time.Hour, Domain: "example.com", Secure: true},
		{Name: "t", MaxAge: 90 * time.Minute, Domain: ".shop.example.com"},
		{Name: "tailor", MaxAge: 0, Domain: "bad domain"},
	} {
		cfg.Keys = []Key{testKey}
		m := New(cfg)
		defer m.Close()
		for _, r := range []*http.Request{plain, tls} {
			line, err := m.SetCookie(ID{Visitor: NewID(), User: "u"}, nil, r, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			value, _, _ := strings.Cut(strings.TrimPrefix(line, cfg.Name+"="), ";")
			want := (&http.Cookie{Name: cfg.Name, Value: value, Path: "/", Domain: cfg.Domain,
				MaxAge: int(cfg.MaxAge / time.Second), HttpOnly: true, Secure: cfg.Secure || r.TLS != nil,
				SameSite: http.SameSiteLaxMode}).String()
			if line != want {
				t.Errorf("%+v: header\n%s\nwant\n%s", cfg, line, want)
			}
			if ck, err := http.ParseSetCookie(line); err != nil || ck.Value != value {
				t.Errorf("%+v: header %q parses to %+v, %v", cfg, line, ck, err)
			}
			if ci, state, _ := m.Read(cookieRequest(&http.Cookie{Name: cfg.Name, Value: value}), time.Now()); cfg.MaxAge > 0 && (state != Valid || ci.User != "u") {
				t.Errorf("%+v: the header's cookie reads as %+v, state %d", cfg, ci, state)
			}
			if got, want := m.ExpiredHeader(r), m.Expired(r).String(); got != want {
				t.Errorf("%+v: expired header %q, want %q", cfg, got, want)
			}
			wantExpired := (&http.Cookie{Name: cfg.Name, Path: "/", Domain: cfg.Domain, MaxAge: -1, HttpOnly: true,
				Secure: cfg.Secure || r.TLS != nil, SameSite: http.SameSiteLaxMode}).String()
			if got := m.ExpiredHeader(r); got != wantExpired {
				t.Errorf("%+v: expired header %q, want %q", cfg, got, wantExpired)
			}
		}
	}
}

func BenchmarkSetCookie(b *testing.B) {
	m := New(Config{Name: "tailor", MaxAge: 400 * 24 * time.Hour, Keys: []Key{testKey}})
	defer m.Close()
	r := httptest.NewRequest("GET", "/", nil)
	ci := ID{Visitor: NewID()}
	first := &store.Event{Type: store.TypePage, Time: time.Now(), Device: "desktop", Path: "/products/moneyball",
		Category: "books", Item: "moneyball", Referrer: "www.example.org", Source: "news"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.SetCookie(ci, first, r, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSecurecookieEncode is what BenchmarkSetCookie replaces:
// securecookie's Encode of the same payload, then the header written by
// (*http.Cookie).String.
func BenchmarkSecurecookieEncode(b *testing.B) {
	m := New(Config{Name: "tailor", MaxAge: 400 * 24 * time.Hour, Keys: []Key{testKey}})
	defer m.Close()
	sc := reader(testKey)
	first := &store.Event{Type: store.TypePage, Time: time.Now(), Device: "desktop", Path: "/products/moneyball",
		Category: "books", Item: "moneyball", Referrer: "www.example.org", Source: "news"}
	b.ReportAllocs()
	for b.Loop() {
		pl := payload{issued: time.Now().Unix(), first: first}
		v, err := sc.Encode("tailor", pl.marshal())
		if err != nil {
			b.Fatal(err)
		}
		_ = m.cookie(v, false).String()
	}
}
