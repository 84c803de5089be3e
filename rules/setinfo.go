package rules

import "slices"

// Text returns the segments file the set was parsed from, as given to
// Parse (or read by ParseFile), so that a dashboard shows the definitions
// that run, whether they came from a file on disk or from bytes built into
// the program; nil for a set made in Go.
func (s *Set) Text() []byte {
	if s == nil {
		return nil
	}
	return slices.Clone(s.text)
}

// Plugins returns the names of the plugins that the set's rules use,
// sorted; none for a set made in Go, whose rules are Go values.
func (s *Set) Plugins() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.plugins)
}

// RegisteredPlugins returns the names of the plugins that the set's file
// could use when it was parsed: those of the registry given with Plugins,
// or of the default registry, sorted; none for a set made in Go.
func (s *Set) RegisteredPlugins() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.registered)
}
