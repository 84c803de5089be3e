package collect_test

import (
	"strings"
	"testing"
	"time"
)

// A 2,500-event batch from a browser address (BrowserRate 20, bursts of
// 40) is refused as too large, with the limit in the message, and does
// not lock the address out: its next call passes.
func TestCollectBatchLargerThanBurst(t *testing.T) {
	t.Parallel()
	c := &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := newSite(t, c.Now, nil)
	ck, _ := s.visitor()
	batch := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","event":"e"},`, 2500), ",") + `]}`
	rec := s.browser("/_tailor/v1/batch", batch, ck)
	if rec.Code != 413 {
		t.Fatalf("2,500-event batch: %d %s, want 413", rec.Code, rec.Body)
	}
	want := `{"error":"too_large","field":"batch","message":"2500 events; this client may send at most 40 in one request"}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body %s\nwant %s", got, want)
	}
	if st := s.p.Stats(); st.CollectRefused != 1 || st.RateLimited != 0 {
		t.Errorf("CollectRefused %d, RateLimited %d; want 1, 0", st.CollectRefused, st.RateLimited)
	}
	c.now = c.now.Add(time.Second)
	for i := range 3 {
		if rec := s.browser("/_tailor/v1/track", `{"event":"e"}`, ck); rec.Code != 200 {
			t.Fatalf("call %d after the refused batch: %d %s", i, rec.Code, rec.Body)
		}
	}
}
