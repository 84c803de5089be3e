package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// An erased profile stays erased: writes still on their way when it was
// deleted are refused while its tombstone lives.
func ExampleStore_Delete() {
	ctx := context.Background()
	st := memory.New(store.Limits{}, memory.TombstoneTTL(10*time.Minute))
	view := store.Event{ID: "web-1:1", Type: store.TypePage, Path: "/", Time: time.Now()}
	st.Apply(ctx, "visitor-1", []store.Event{view})

	st.Delete(ctx, "visitor-1") // Forget
	late := store.Event{ID: "web-2:7", Type: store.TypePage, Path: "/late", Time: time.Now()}
	_, err := st.Apply(ctx, "visitor-1", []store.Event{late})
	fmt.Println(errors.Is(err, store.ErrErased))
	_, err = st.Load(ctx, "visitor-1")
	fmt.Println(errors.Is(err, store.ErrErased), errors.Is(err, store.ErrNotFound))
	// Output:
	// true
	// true true
}
