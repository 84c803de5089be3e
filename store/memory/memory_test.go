package memory_test

import (
	"testing"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
	"github.com/tailorhq/tailor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memory.New(store.Limits{}) })
}
