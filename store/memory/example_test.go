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

// A process that loads definitions from a document hears of every new
// version through its subscription, and reads it there: the document is
// written before it is announced. Announcements of profiles are skipped.
func ExampleStore_PutDocument() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := memory.New(store.Limits{})
	st.Subscribe(ctx, func(c store.Change) {
		if c.Document != "segments" {
			return // a profile, or another document
		}
		data, err := st.Document(ctx, c.Document)
		fmt.Printf("segments now %s (%v)\n", data, err)
	})

	view := store.Event{ID: "web-1:1", Type: store.TypePage, Path: "/", Time: time.Now()}
	st.Apply(ctx, "visitor-1", []store.Event{view})
	st.PutDocument(ctx, "segments", []byte(`{"version":2}`))
	// Output:
	// segments now {"version":2} (<nil>)
}
