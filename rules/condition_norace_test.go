//go:build !race

package rules

// condRace reports whether the race detector is on.
const condRace = false
