package integration_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

func TestDefinitionsAcrossRedis(t *testing.T) { definitionsAcross(t, redisStores(t)) }

func TestDefinitionsAcrossPostgres(t *testing.T) { definitionsAcross(t, pgStores(t)) }

// definitionsAcross: versions published on one instance are served by
// another, which polls once an hour, so only the store's announcement can
// switch it; the switch takes well under a second.
func definitionsAcross(t *testing.T, newStore func(*testing.T) store.Store) {
	ctx := context.Background()
	file := `{"segments": [{"name": "returning", "rule": {"visits": {"min": 2}}}]}`
	open := func() (*rules.Engine, *definitions.Definitions) {
		e := &rules.Engine{}
		if err := e.Reload([]byte(file)); err != nil {
			t.Fatal(err)
		}
		d, err := definitions.Open(ctx, definitions.Config{Store: newStore(t), Segments: e,
			Files: definitions.Content{Segments: file}, PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return e, d
	}
	_, a := open()
	eb, b := open()
	var lags []time.Duration
	for i := 1; i <= 10; i++ {
		name := fmt.Sprintf("pricing-%d", i)
		content := definitions.Content{Segments: fmt.Sprintf(`{"segments": [
  {"name": %q, "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}}]}`, name)}
		if _, err := a.Publish(ctx, content, i-1, "ann", "take "+fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for b.Status().Version != i {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the second instance serves version %d, 10 s after version %d was published", b.Status().Version, i)
			}
			time.Sleep(time.Millisecond)
		}
		lags = append(lags, time.Since(start))
		if segs := eb.Segments(); len(segs) != 1 || segs[0].Name != name {
			t.Fatalf("the second instance at version %d serves %v", i, segs)
		}
	}
	slices.Sort(lags)
	t.Logf("switch of the second instance after Publish returned: median %v, max %v", lags[len(lags)/2], lags[len(lags)-1])
	if lags[len(lags)/2] > time.Second {
		t.Errorf("median switch %v, more than a second", lags[len(lags)/2])
	}
	h, err := b.History(ctx)
	if err != nil || len(h) != 10 || !strings.HasPrefix(h[0].Note, "take 10") {
		t.Fatalf("history read on the second instance: %d versions, %v", len(h), err)
	}
}
