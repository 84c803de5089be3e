// Package bufpool recycles the byte buffers that stores encode profiles
// into, which live only until a write has reached the backend.
package bufpool

import "sync"

// maxCap is the largest buffer kept; bigger ones are left to the garbage
// collector so that one outsized profile does not pin its memory.
const maxCap = 256 << 10

var pool = sync.Pool{New: func() any { return new([]byte) }}

// Get returns an empty buffer.
func Get() *[]byte {
	b := pool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// Put returns b for reuse. The caller must not use it afterwards.
func Put(b *[]byte) {
	if b == nil || cap(*b) > maxCap {
		return
	}
	pool.Put(b)
}
