package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignKnownValue(t *testing.T) {
	t.Parallel()
	// printf '1772359200.{"id":"x"}' | openssl dgst -sha256 -hmac whsec
	got := Sign("whsec", time.Unix(1772359200, 0), []byte(`{"id":"x"}`))
	want := "t=1772359200,v1=6a26cbcf9ff534d760200beb04f1b3d8ac0e862718621b60474532f20f3f3e93"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if err := verifyAt("whsec", got, []byte(`{"id":"x"}`), time.Minute, time.Unix(1772359200, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1772359200, 0)
	body := []byte(`{"id":"abc","type":"segment.entered"}`)
	good := Sign("k", now, body)
	v1 := good[strings.Index(good, "v1="):]
	other := Sign("old", now, body)
	otherV1 := other[strings.Index(other, "v1="):]
	for _, tc := range []struct {
		name   string
		secret string
		header string
		body   string
		tol    time.Duration
		at     time.Time
		want   error
	}{
		{"good", "k", good, string(body), 0, now, nil},
		{"spaces", "k", "t=1772359200, " + v1, string(body), 0, now, nil},
		{"rotation", "k", "t=1772359200," + otherV1 + "," + v1, string(body), 0, now, nil},
		{"unknown scheme ignored", "k", good + ",v0=abc", string(body), 0, now, nil},
		{"within tolerance", "k", good, string(body), 0, now.Add(299 * time.Second), nil},
		{"clock behind", "k", good, string(body), 0, now.Add(-299 * time.Second), nil},
		{"too old", "k", good, string(body), 0, now.Add(301 * time.Second), ErrTimestamp},
		{"too new", "k", good, string(body), time.Minute, now.Add(-61 * time.Second), ErrTimestamp},
		{"no tolerance", "k", good, string(body), -1, now.Add(1000 * time.Hour), nil},
		{"wrong secret", "x", good, string(body), 0, now, ErrSignature},
		{"tampered body", "k", good, string(body) + " ", 0, now, ErrSignature},
		{"other timestamp", "k", "t=1772359201," + v1, string(body), 0, now, ErrSignature},
		{"empty", "k", "", string(body), 0, now, ErrNoSignature},
		{"no t", "k", v1, string(body), 0, now, ErrHeader},
		{"no v1", "k", "t=1772359200", string(body), 0, now, ErrHeader},
		{"two t", "k", "t=1,t=2," + v1, string(body), 0, now, ErrHeader},
		{"bad hex", "k", "t=1772359200,v1=zz", string(body), 0, now, ErrHeader},
		{"short mac", "k", "t=1772359200,v1=abcd", string(body), 0, now, ErrHeader},
		{"bad t", "k", "t=soon," + v1, string(body), 0, now, ErrHeader},
		{"negative t", "k", "t=-5," + v1, string(body), 0, now, ErrHeader},
		{"no equals", "k", "garbage", string(body), 0, now, ErrHeader},
	} {
		err := verifyAt(tc.secret, tc.header, []byte(tc.body), tc.tol, tc.at)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1772359200, 0)
	f.Add(Sign("k", now, []byte("{}")), []byte("{}"))
	f.Add("t=1,v1=", []byte(""))
	f.Add("t=,v1=00,,=", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := verifyAt("k", header, body, 0, now)
		if err == nil && Sign("k", now, body) != header {
			// Accepted headers must carry the right MAC: only the
			// element order, spaces and extra elements may differ.
			if !strings.Contains(header, Sign("k", now, body)[strings.Index(Sign("k", now, body), "v1="):]) {
				t.Errorf("accepted %q for %q", header, body)
			}
		}
	})
}
