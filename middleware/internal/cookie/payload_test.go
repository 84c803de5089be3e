package cookie

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	first := &store.Event{Type: store.TypePage, Time: time.UnixMilli(1795392525123).UTC(), Device: "mobile",
		Path: "/products/red-sox-banner", Category: "red-sox", Item: "red-sox-banner", Referrer: "news.example.org",
		Source: "newsletter", Medium: "email", Campaign: strings.Repeat("x", 300)}
	for _, in := range []payload{
		{id: [16]byte{1, 2, 3}, issued: 1795392525},
		{id: [16]byte{0xff}, issued: 1, first: first},
		{id: [16]byte{7}, issued: 2, user: strings.Repeat("ü", store.MaxUserIDLength/2), first: first},
	} {
		var out payload
		if err := out.unmarshal(in.marshal()); err != nil {
			t.Fatal(err)
		}
		if out.id != in.id || out.issued != in.issued || out.user != in.user || (in.first == nil) != (out.first == nil) {
			t.Fatalf("round trip: %+v -> %+v", in, out)
		}
		if in.first != nil {
			want := *in.first
			want.Campaign = want.Campaign[:maxField]
			if got := *out.first; got.Path != want.Path || got.Campaign != want.Campaign || !got.Time.Equal(want.Time) ||
				got.Device != want.Device || got.Referrer != want.Referrer || got.Item != want.Item {
				t.Fatalf("first page view: %+v, want %+v", got, want)
			}
		}
	}
}

func TestPayloadVersion1(t *testing.T) {
	t.Parallel()
	// Cookies issued before users were put in them still decode.
	v3 := (&payload{id: [16]byte{9}, issued: 5, first: &store.Event{Path: "/x", Time: time.UnixMilli(7)}}).marshal()
	v1 := append([]byte{1}, v3[1:payloadBase]...)
	v1 = append(v1, v3[payloadBase+1:]...) // without the user's length
	var p payload
	if err := p.unmarshal(v1); err != nil || p.id[0] != 9 || p.issued != 5*86400 || p.user != "" || p.first == nil || p.first.Path != "/x" {
		t.Fatalf("%+v %v", p, err)
	}
	// Versions 1 and 2 carry the issue day: it reads as its first second.
	v2 := append([]byte{2}, v3[1:]...)
	if err := p.unmarshal(v2); err != nil || p.issued != 5*86400 || p.first == nil {
		t.Fatalf("version 2: %+v %v", p, err)
	}
}

// FuzzPayload: any bytes decode without panic, and what decodes encodes
// back to the same bytes (version 3) or to the same payload (versions 1 and 2).
func FuzzPayload(f *testing.F) {
	f.Add((&payload{issued: 3}).marshal())
	f.Add((&payload{first: &store.Event{Path: "/", Device: "tablet", Time: time.UnixMilli(5)}}).marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p payload
		if p.unmarshal(b) != nil {
			return
		}
		again := p.marshal()
		if b[0] == payloadVersion && !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, again)
		}
		var q payload
		if err := q.unmarshal(again); err != nil || q.id != p.id || q.issued != p.issued || q.user != p.user || (q.first == nil) != (p.first == nil) {
			t.Fatalf("decoded %+v, again %+v (%v)", p, q, err)
		}
	})
}
