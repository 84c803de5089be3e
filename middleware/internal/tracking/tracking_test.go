package tracking

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

var parseNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func TestParseMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, kind, body string
		want             store.Event
		user, anon, prev string
	}{
		{"track", KindTrack, `{"userId":"u","event":"Clicked","properties":{"a":1},"messageId":"m"}`,
			store.Event{ID: "#s:m", Type: store.TypeTrack, Name: "Clicked", Props: json.RawMessage(`{"a":1}`), Time: parseNow}, "u", "", ""},
		{"purchase", KindTrack, `{"anonymousId":"a","event":"purchase","properties":{"total":"9.5","products":[{"sku":"no id","price":1},{"product_id":7,"quantity":3}]}}`,
			store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Revenue: 9.5, Time: parseNow,
				Props: json.RawMessage(`{"total":"9.5","products":[{"sku":"no id","price":1},{"product_id":7,"quantity":3}]}`),
				Items: []store.Item{{Price: 1}, {ID: "7", Quantity: 3}}}, "", "a", ""},
		{"page from context", KindPage, `{"userId":"u","category":"docs","context":{"page":{"url":"https://x.example/a/b?c","referrer":"https://www.Google.com/"},"userAgent":"Mozilla/5.0 (iPhone)","campaign":{"source":"s","medium":"m","name":"n"}}}`,
			store.Event{Type: store.TypePage, Path: "/a/b", Category: "docs", Referrer: "www.google.com", Device: "mobile", Source: "s", Medium: "m", Campaign: "n", Time: parseNow}, "u", "", ""},
		{"screen", KindScreen, `{"userId":"u","name":"Settings","properties":{"category":"app"}}`,
			store.Event{Type: store.TypePage, Name: "Settings", Path: "Settings", Category: "app", Props: json.RawMessage(`{"category":"app"}`), Time: parseNow}, "u", "", ""},
		{"identify", KindIdentify, `{"userId":"u","anonymousId":"a","traits":{"plan":"pro"}}`,
			store.Event{Type: store.TypeIdentify, UserID: "u", Traits: json.RawMessage(`{"plan":"pro"}`), Time: parseNow}, "u", "a", ""},
		{"group", KindGroup, `{"userId":"u","groupId":"g1","traits":{}}`,
			store.Event{Type: store.TypeIdentify, Name: "group", Traits: json.RawMessage(`{"group":{"id":"g1"}}`), Time: parseNow}, "u", "", ""},
		{"alias", KindAlias, `{"userId":"u","previousId":"p"}`,
			store.Event{Type: store.TypeAlias, UserID: "u", Time: parseNow}, "u", "", "p"},
		{"numeric ids", KindTrack, `{"userId":42,"event":"e","messageId":7}`,
			store.Event{ID: "#s:7", Type: store.TypeTrack, Name: "e", Time: parseNow}, "42", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, calls, errs, fatal := ParseCalls([]byte(tc.body), tc.kind, false, parseNow)
			if fatal != nil || len(errs) > 0 || len(calls) != 1 {
				t.Fatalf("%v %v %d", fatal, errs, len(calls))
			}
			c := calls[0]
			got, _ := json.Marshal(*c.Ev)
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) || c.UserID != tc.user || c.AnonymousID != tc.anon || c.PreviousID != tc.prev {
				t.Errorf("got  %s %q %q %q\nwant %s", got, c.UserID, c.AnonymousID, c.PreviousID, want)
			}
		})
	}
}

func TestParseBatchContextAndKey(t *testing.T) {
	t.Parallel()
	body := `{"writeKey":"k","context":{"campaign":{"source":"batch"},"page":{"path":"/from-batch"}},"batch":[
		{"type":"page","userId":"u"},
		{"type":"page","userId":"u","context":{"campaign":{"source":"own"}}},
		{"type":"track","userId":"u","event":"e"}]}`
	key, calls, errs, fatal := ParseCalls([]byte(body), KindBatch, false, parseNow)
	if key != "k" || fatal != nil || len(errs) != 0 || len(calls) != 3 {
		t.Fatalf("%q %v %v %d", key, fatal, errs, len(calls))
	}
	if calls[0].Ev.Source != "batch" || calls[0].Ev.Path != "/from-batch" || calls[1].Ev.Source != "own" || calls[2].Ev.Source != "batch" {
		t.Errorf("%+v", calls)
	}
	if calls[2].Index != 2 {
		t.Errorf("index %d", calls[2].Index)
	}
}

func TestParseDoesNotAliasTheBody(t *testing.T) {
	t.Parallel()
	body := []byte(`{"batch":[{"type":"page","userId":"user-1","messageId":"mid","properties":{"path":"/p","category":"c","x":"y"},
		"context":{"page":{"referrer":"https://ref.example/"},"campaign":{"source":"s"}}},{"type":"identify","anonymousId":"anon","traits":{"k":"v"}}]}`)
	_, calls, _, _ := ParseCalls(body, KindBatch, false, parseNow)
	before, _ := json.Marshal(*calls[0].Ev)
	ids := calls[0].UserID + calls[1].AnonymousID
	for i := range body {
		body[i] = 'X'
	}
	after, _ := json.Marshal(*calls[0].Ev)
	if string(before) != string(after) || calls[0].UserID+calls[1].AnonymousID != ids || string(calls[1].Ev.Traits) != `{"k":"v"}` {
		t.Errorf("calls changed with the body:\n%s\n%s", before, after)
	}
}

// TestParseMessageIDNamespaces: the messageIds of browser calls
// (anonymous) and of server calls map to event ids that never collide,
// and the same messageId from the same side maps to the same id.
func TestParseMessageIDNamespaces(t *testing.T) {
	t.Parallel()
	eventID := func(body string, anonymous bool) string {
		t.Helper()
		_, calls, errs, fatal := ParseCalls([]byte(body), KindTrack, anonymous, parseNow)
		if fatal != nil || len(errs) > 0 || len(calls) != 1 {
			t.Fatalf("%s: %v %v %d", body, fatal, errs, len(calls))
		}
		return calls[0].Ev.ID
	}
	seen := make(map[string]string)
	for _, m := range []string{`"order-1"`, `"s:order-1"`, `"b:order-1"`, `"#order-1"`, `7`} {
		body := `{"anonymousId":"a","event":"e","messageId":` + m + `}`
		for _, anonymous := range []bool{false, true} {
			id := eventID(body, anonymous)
			if again := eventID(body, anonymous); again != id {
				t.Errorf("messageId %s, anonymous=%v: %q, then %q", m, anonymous, id, again)
			}
			if _, _, ok := store.SplitID(id); ok {
				t.Errorf("messageId %s: event id %q is read as a producer's sequence", m, id)
			}
			who := fmt.Sprintf("messageId %s, anonymous=%v", m, anonymous)
			if other, ok := seen[id]; ok {
				t.Errorf("%s and %s both map to %q", who, other, id)
			}
			seen[id] = who
		}
	}
	if got := eventID(`{"anonymousId":"a","event":"e","messageId":"m"}`, true); got != "#b:m" {
		t.Errorf("browser id %q, want #b:m", got)
	}
	if got := eventID(`{"anonymousId":"a","event":"e","messageId":"m"}`, false); got != "#s:m" {
		t.Errorf("server id %q, want #s:m", got)
	}
}

// FuzzCollect: parseCalls never panics; it refuses a body with a clear
// 400 or 413 naming what is wrong, or returns calls that are valid and
// bounded, and errors for the others.
func FuzzCollect(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u","event":"e"}`,
		`{"batch":[{"type":"track","userId":"u","event":"Order Completed","properties":{"products":[{"id":"a","price":1,"quantity":2}]}}]}`,
		`{"batch":[{"type":"page","anonymousId":"a","properties":{"url":"http://x/y"},"timestamp":"2026-01-01T00:00:00Z"},{"type":"alias","userId":"u","previousId":"p"}],"sentAt":"2026-01-01T00:00:01Z","context":{"page":{"path":"/"}}}`,
		`{"batch":[{"type":"group","userId":"u","groupId":"g","traits":{"a":[1,{"b":null}]}},{"type":"identify","userId":"u","traits":{"x":"\u0000"}}]}`,
		`{"batch":{}}`, `[]`, `{"a":`, `{"batch":[1,"x",null,{}]}`, strings.Repeat("[", 100),
	} {
		f.Add([]byte(s), uint8(0), false)
		f.Add([]byte(s), uint8(6), true)
	}
	kinds := []string{KindTrack, KindPage, KindScreen, KindIdentify, KindGroup, KindAlias, KindBatch}
	f.Fuzz(func(t *testing.T, body []byte, k uint8, anonymous bool) {
		kind := kinds[int(k)%len(kinds)]
		_, calls, errs, fatal := ParseCalls(body, kind, anonymous, parseNow)
		if fatal != nil {
			if (fatal.Status != http.StatusBadRequest && fatal.Status != http.StatusRequestEntityTooLarge) || fatal.Message == "" || calls != nil || errs != nil {
				t.Fatalf("fatal %+v with %d calls, %d errors", fatal, len(calls), len(errs))
			}
			return
		}
		if len(calls)+len(errs) > maxBatchEvents || (kind != KindBatch && len(calls)+len(errs) != 1) {
			t.Fatalf("%d calls and %d errors", len(calls), len(errs))
		}
		for _, e := range errs {
			if (e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge) || e.Message == "" {
				t.Fatalf("error %+v", e)
			}
			if kind == KindBatch && !strings.HasPrefix(e.Field, "batch[") {
				t.Fatalf("error of a batch event names %q", e.Field)
			}
		}
		for _, c := range calls {
			if c.UserID == "" && c.AnonymousID == "" && !anonymous {
				t.Fatalf("call without id: %+v", c)
			}
			for _, id := range []string{c.UserID, c.AnonymousID, c.PreviousID} {
				if id == "" {
					continue
				}
				if _, err := store.UserProfileID(id); err != nil {
					t.Fatalf("id %q: %v", id, err)
				}
				if err := store.ValidateID(AnonProfileID(id)); err != nil {
					t.Fatalf("id %q: %v", id, err)
				}
			}
			if ns := messageEventID("", anonymous); c.Ev.ID != "" && !strings.HasPrefix(c.Ev.ID, ns) {
				t.Fatalf("event id %q of a call with anonymous=%v, want it under %q", c.Ev.ID, anonymous, ns)
			}
			if c.Ev.Type == "" || c.Ev.Time.After(parseNow) || len(c.Ev.Props) > maxProps || len(c.Ev.Path) > maxPath || len(c.Ev.Items) > maxProducts {
				t.Fatalf("event %+v", c.Ev)
			}
			for _, raw := range [][]byte{c.Ev.Props, c.Ev.Traits} {
				if raw != nil && !json.Valid(raw) {
					t.Fatalf("invalid JSON kept: %q", raw)
				}
			}
			// The event folds.
			store.New("x").Apply(store.Limits{}, *c.Ev)
		}
	})
}

func TestDepthWithin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{`[[1]]`, true}, {`[[[1]]]`, false}, {`{"a":"[[[[["}`, true}, {`{"a\"[[[":[1]}`, true}, {`[{"a":{}}]`, false},
	} {
		if got := depthWithin([]byte(tc.s), 2); got != tc.ok {
			t.Errorf("%s: %v", tc.s, got)
		}
	}
}

// BenchmarkParseCalls parses a batch of 100 events, the parsing part of
// BenchmarkCollect.
func BenchmarkParseCalls(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"batch":[`)
	for j := range 100 {
		if j > 0 {
			sb.WriteByte(',')
		}
		msg := `"userId":"user-` + strings.Repeat("1", j%4+1) + `@example.com","messageId":"m-1-` + string(rune('a'+j%26)) + `","timestamp":"2026-06-01T12:00:01.001Z"`
		switch j % 10 {
		case 0, 1:
			sb.WriteString(`{"type":"page",` + msg + `,"name":"Product","properties":{"path":"/products/p1","category":"books","title":"A book"}}`)
		case 9:
			sb.WriteString(`{"type":"track",` + msg + `,"event":"Order Completed","properties":{"order_id":"o1","revenue":25,"products":[{"product_id":"p1","category":"books","price":12.5,"quantity":2}]}}`)
		default:
			sb.WriteString(`{"type":"track",` + msg + `,"event":"Product Viewed","properties":{"product_id":"p1","category":"books","price":12.5}}`)
		}
	}
	sb.WriteString(`],"context":{"library":{"name":"analytics-node","version":"2.2"}},"sentAt":"2026-06-01T12:01:00Z"}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_, calls, errs, fatal := ParseCalls(body, KindBatch, false, parseNow)
		if len(calls) != 100 || errs != nil || fatal != nil {
			b.Fatal(len(calls), errs, fatal)
		}
	}
}
