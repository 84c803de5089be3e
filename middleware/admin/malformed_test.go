package admin_test

import (
	"net/url"
	"testing"
)

// TestMalformedInput: the editor's pages and forms answer malformed input
// (JSON that is not a segment, form fields of the wrong type, unknown
// names and ids) with a page that says what is wrong, never a server error.
func TestMalformedInput(t *testing.T) {
	const p = "/_tailor/admin/definitions/"
	d := newEditorDash(t, nil)
	jsons := []string{``, `[]`, `"x"`, `5`, `null`, `{"name": 5}`, `{"name": "x", "rule": []}`, `{"name":"x","rule":{"pageVisited":{"path":"/p"}}} trailing`,
		`{"name": "customer", "rule": {"visits": {"min": 1}}}`, `{"name": "x", "rule": {"inSegment": "x"}}`, "{\"name\": \"\xff\", \"rule\": {\"visits\": {}}}", `{"a":`, `{"name":"x","rule":{"pageVisited":{"path":"/p","within":"-7d"}}}`}
	for _, j := range jsons {
		for _, path := range []string{"segments/new", "segments/customer"} {
			resp, body := d.do(t, "POST", p+path, "ed", url.Values{"mode": {"json"}, "json": {j}}, nil)
			if resp.StatusCode >= 500 {
				t.Errorf("%s %q: %d %.300s", path, j, resp.StatusCode, body)
			}
		}
		for _, f := range []string{"segment", "segments", "slots"} {
			resp, body := d.do(t, "POST", p+"validate", "ed", url.Values{"file": {f}, "text": {j}, "name": {"customer"}}, nil)
			if resp.StatusCode >= 500 {
				t.Errorf("validate %s %q: %d %.300s", f, j, resp.StatusCode, body)
			}
		}
		resp, body := d.do(t, "POST", p+"json", "ed", url.Values{"file": {"slots"}, "text": {j}}, nil)
		if resp.StatusCode >= 500 {
			t.Errorf("json slots %q: %d %.300s", j, resp.StatusCode, body)
		}
		resp, body = d.do(t, "POST", p+"slots/hero/variants/new", "ed", url.Values{"key": {"k"}, "segment": {j}, "priority": {j}, "condition": {j}, "fields": {j}, "template": {j}}, nil)
		if resp.StatusCode >= 500 {
			t.Errorf("variant %q: %d %.300s", j, resp.StatusCode, body)
		}
	}
	for _, kind := range []string{"", "nope", "pageVisited", "eventCount", "recency", "lifecycle", "rfm", "email", "interest", "trait", "context", "seasonal", "dueToBuy", "condition"} {
		form := url.Values{"name": {"n"}, "kind": {kind}, "priority": {"x"}}
		for _, v := range []string{"", "x", "-1", "1e999", "[", "4-", "99999999999999999999"} {
			for _, a := range []string{"path", "match", "min", "max", "within", "name", "where", "of", "olderThan", "stage", "repeat", "loyal", "loyalWithin", "r", "f", "m", "condition", "is", "value", "field", "in"} {
				form.Set("arg."+kind+"."+a, v)
			}
			resp, body := d.do(t, "POST", p+"segments/new", "ed", form, nil)
			if resp.StatusCode >= 500 {
				t.Errorf("form %s %q: %d %.300s", kind, v, resp.StatusCode, body)
			}
		}
	}
	for _, path := range []string{"versions/-1", "versions/99", "versions/abc", "versions/0", "backtest/x", "backtest/1-zz", "backtest/99999999999999999999-a", "test?who=x&by=user", "test?by=me", "test?who=%00&by=visitor", "slots/nope", "slots/hero/variants/nope", "segments/nope"} {
		resp, body := d.do(t, "GET", p+path, "vi", nil, nil)
		if resp.StatusCode >= 500 && resp.StatusCode != 501 && resp.StatusCode != 503 {
			t.Errorf("GET %s: %d %.300s", path, resp.StatusCode, body)
		}
	}
	for _, path := range []string{"versions/0/restore", "versions/99/restore", "backtest/1-zz/cancel", "draft/rebase", "draft/discard", "backtest", "slots/hero/variants/nope/delete", "segments/nope/delete"} {
		resp, body := d.do(t, "POST", p+path, "ed", url.Values{"segment": {"nope"}, "weeks": {"-5"}}, nil)
		if resp.StatusCode >= 500 && resp.StatusCode != 501 && resp.StatusCode != 503 {
			t.Errorf("POST %s: %d %.300s", path, resp.StatusCode, body)
		}
	}
}
