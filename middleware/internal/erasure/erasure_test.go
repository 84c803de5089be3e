package erasure

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/store"
)

func TestSet(t *testing.T) {
	t.Parallel()
	s := NewSet(time.Hour)
	if s.Profile("a") || s.Visitor(cookie.ID{Visitor: "v"}) {
		t.Fatal("an empty set holds something")
	}
	s.Add([]string{"a", store.UserPrefix + "ann"}, []string{"v"}, time.Hour)
	for _, tc := range []struct {
		what string
		got  bool
		want bool
	}{
		{"profile a", s.Profile("a"), true},
		{"profile b", s.Profile("b"), false},
		{"visitor v", s.Visitor(cookie.ID{Visitor: "v"}), true},
		{"a cookie of visitor w signed in as ann", s.Visitor(cookie.ID{Visitor: "w", User: "ann"}), true},
		{"a cookie of visitor w signed in as bob", s.Visitor(cookie.ID{Visitor: "w", User: "bob"}), false},
		{"a cookie naming the erased profile a", s.Visitor(cookie.ID{Visitor: "a"}), true},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}

// Profiles are remembered for their ttl, visitors for a cookie's life.
func TestSetExpires(t *testing.T) {
	t.Parallel()
	s := NewSet(time.Hour)
	s.Add([]string{"a"}, []string{"v"}, time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for s.Profile("a") {
		if time.Now().After(deadline) {
			t.Fatal("a profile outlived its ttl")
		}
		time.Sleep(time.Millisecond)
	}
	if !s.Visitor(cookie.ID{Visitor: "v"}) {
		t.Error("a visitor was forgotten with the profiles' ttl")
	}
}

// At most maxForgotten visitors are remembered, the oldest forgotten first.
func TestSetBound(t *testing.T) {
	t.Parallel()
	s := NewSet(time.Hour)
	ids := make([]string, maxForgotten+10)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	s.Add(nil, ids, time.Minute)
	if s.Visitor(cookie.ID{Visitor: ids[0]}) || s.Visitor(cookie.ID{Visitor: ids[9]}) {
		t.Error("the oldest visitors past the bound are still remembered")
	}
	if !s.Visitor(cookie.ID{Visitor: ids[10]}) || !s.Visitor(cookie.ID{Visitor: ids[len(ids)-1]}) {
		t.Error("visitors within the bound were forgotten")
	}
}

func TestSetConcurrent(t *testing.T) {
	t.Parallel()
	s := NewSet(time.Hour)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := fmt.Sprint(g, "-", i)
				s.Add([]string{id}, []string{id}, time.Hour)
				if !s.Profile(id) || !s.Visitor(cookie.ID{Visitor: id}) {
					t.Errorf("%s not remembered", id)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMergeLog(t *testing.T) {
	t.Parallel()
	l := MergeLog{TTL: time.Hour}
	merge := func(id string) store.Event {
		return store.Event{ID: "#merge>" + id, Type: store.TypeMerge, Merge: store.New(id)}
	}
	l.Add(store.Batch{ID: "user:ann", Events: []store.Event{
		merge("v1"), {ID: "x:1", Type: store.TypeTrack, Name: "buy"}, {ID: "x:2", Type: store.TypeMerge}, merge("v2"),
	}})
	l.Add(store.Batch{ID: "user:bob", Events: []store.Event{merge("v3")}})
	got := l.Take("user:ann")
	if len(got) != 2 || got[0].Merge.ID != "v1" || got[1].Merge.ID != "v2" {
		t.Fatalf("Take(user:ann) = %+v, want the merges of v1 and v2 (not other events, nor a merge without a profile)", got)
	}
	if got := l.Take("user:ann"); len(got) != 0 {
		t.Errorf("a second Take returned %d events", len(got))
	}
	if got := l.Take("user:bob"); len(got) != 1 {
		t.Errorf("Take(user:bob) = %d events, want 1", len(got))
	}
	expired := MergeLog{TTL: -time.Second}
	expired.Add(store.Batch{ID: "user:cy", Events: []store.Event{merge("v4")}})
	if got := expired.Take("user:cy"); len(got) != 0 {
		t.Errorf("an expired merge was returned: %+v", got)
	}
}
