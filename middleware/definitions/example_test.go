package definitions_test

import (
	"context"
	"fmt"

	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A site keeps its segments in the store: it serves its file until a
// version is published, then whatever is current, on every instance.
func Example() {
	ctx := context.Background()
	st := memory.New(store.Limits{}) // the site's shared store
	file := `{"segments": [{"name": "returning", "rule": {"visits": {"min": 2}}}]}`
	engine := &rules.Engine{}
	if err := engine.Reload([]byte(file)); err != nil {
		panic(err)
	}
	defs, err := definitions.Open(ctx, definitions.Config{Store: st, Segments: engine,
		Files: definitions.Content{Segments: file}})
	if err != nil {
		panic(err)
	}
	defer defs.Close()

	draft, _ := defs.Draft(ctx)
	draft.Content.Segments = `{"segments": [
  {"name": "returning", "rule": {"visits": {"min": 2}}},
  {"name": "pricing-curious", "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}}
]}`
	v, err := defs.Publish(ctx, draft.Content, draft.Base, "ann@example.com", "visited /pricing twice this week")
	if err != nil {
		panic(err)
	}
	fmt.Println("published version", v.Number, "by", v.By)
	for _, s := range engine.Segments() {
		fmt.Println("serving", s.Name)
	}

	// Roll back: the files' content becomes current again, as version 2.
	v, _ = defs.Restore(ctx, 0, "bob@example.com", "not yet")
	fmt.Println("version", v.Number, v.Action, "of", v.From)
	fmt.Println("serving", len(engine.Segments()), "segment")
	// Output:
	// published version 1 by ann@example.com
	// serving returning
	// serving pricing-curious
	// version 2 restore of 0
	// serving 1 segment
}
