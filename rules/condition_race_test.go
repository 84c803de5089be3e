//go:build race

package rules

// condRace reports whether the race detector is on. It makes sync.Pool drop
// items at random, so regexp allocates its matchers, and counting
// allocations means nothing.
const condRace = true
