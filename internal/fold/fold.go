// Package fold is the part of an ApplyBatch that every store shares: the
// batches of one profile applied in order, and the result encoded into a
// reused buffer.
package fold

import (
	"fmt"

	"github.com/tailorhq/tailor/store"
)

// Batches applies the batches of idx (indices into batches, in order) to
// p, each counting one Version, and sets out[i] to the profile after batch
// i: an earlier one is a copy, so each keeps its own state. It returns the
// profile after the last batch.
func Batches(lim store.Limits, p *store.Profile, batches []store.Batch, idx []int, out []*store.Profile) *store.Profile {
	for k, i := range idx {
		p.Apply(lim, batches[i].Events...)
		p.Version++
		if k < len(idx)-1 {
			out[i] = p.Clone()
		} else {
			out[i] = p
		}
	}
	return p
}

// Encode encodes p into *buf, reusing its memory (a buffer of
// internal/bufpool, say), and returns the encoding.
func Encode(buf *[]byte, p *store.Profile) ([]byte, error) {
	enc, err := p.AppendBinary((*buf)[:0])
	*buf = enc
	if err != nil {
		return nil, fmt.Errorf("encode profile %q: %w", p.ID, err)
	}
	return enc, nil
}
