package middleware

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
		{id: [16]byte{1, 2, 3}, day: 20779},
		{id: [16]byte{0xff}, day: 1, first: first},
	} {
		var out payload
		if err := out.unmarshal(in.marshal()); err != nil {
			t.Fatal(err)
		}
		if out.id != in.id || out.day != in.day || (in.first == nil) != (out.first == nil) {
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

// FuzzPayload: any bytes decode without panic, and what decodes encodes
// back to the same bytes.
func FuzzPayload(f *testing.F) {
	f.Add((&payload{day: 3}).marshal())
	f.Add((&payload{first: &store.Event{Path: "/", Device: "tablet", Time: time.UnixMilli(5)}}).marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p payload
		if p.unmarshal(b) != nil {
			return
		}
		if again := p.marshal(); !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, again)
		}
	})
}
