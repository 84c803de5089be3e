package memory_test

import (
	"testing"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
	"github.com/tailorhq/tailor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunWith(t, func(_ *testing.T, o storetest.Options) store.Store {
		return memory.New(store.Limits{}, memory.TombstoneTTL(o.TombstoneTTL))
	})
}
