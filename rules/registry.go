package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// A Factory makes a rule from its JSON arguments in a segments file: the
// value of its key in a rule object, such as {"below": 5} in
// {"coldWeather": {"below": 5}}. It returns an error that says what is
// wrong with the arguments; errors from json.Unmarshal that name a field
// are reported at that field.
//
// A plugin's rule should implement Explainer, so that explanations (the
// dashboard, a visitor's "why") show what it found and what it wanted; a
// rule that does not is explained by its answer alone ("match").
type Factory func(args json.RawMessage) (Rule, error)

// A Registry holds the plugins that segments files may use by name. It is
// safe for concurrent use: plugins may be registered while files are
// parsed. The zero Registry is empty and ready to use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Factory
}

// NewRegistry returns an empty registry. Tests and programs that want
// their own set of plugins use one with the Plugins option instead of the
// default registry that Register fills.
func NewRegistry() *Registry { return &Registry{} }

// Register adds the plugin name, made by f. It returns an error if name
// is empty, is not a valid plugin name (a letter, then letters, digits,
// "_", "-" or "."), is the name of a built-in rule, or is already
// registered, or if f is nil.
func (r *Registry) Register(name string, f Factory) error {
	if err := validPluginName(name); err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("rules: plugin %q: nil factory", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return fmt.Errorf("rules: plugin %q registered twice", name)
	}
	if r.m == nil {
		r.m = make(map[string]Factory)
	}
	r.m[name] = f
	return nil
}

// Lookup returns the factory of the plugin name.
func (r *Registry) Lookup(name string) (Factory, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[name]
	return f, ok
}

// Names returns the names of the registered plugins, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// defaultRegistry holds the plugins of Register.
var defaultRegistry = NewRegistry()

// Register makes a plugin available to segments files under name, in the
// default registry, which Parse uses unless given another with Plugins. It
// is meant to be called from an init function or from main, before files
// are parsed, and it is safe for concurrent use.
//
// Like database/sql.Register, it panics if name is registered twice, or if
// name or f is invalid (see Registry.Register): these are programming
// errors.
func Register(name string, f Factory) {
	if err := defaultRegistry.Register(name, f); err != nil {
		panic(err)
	}
}

// RegisteredPlugins returns the names of the plugins in the default
// registry, sorted.
func RegisteredPlugins() []string { return defaultRegistry.Names() }

func validPluginName(name string) error {
	if name == "" {
		return fmt.Errorf("rules: empty plugin name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '_' || c == '-' || c == '.')) {
			return fmt.Errorf("rules: invalid plugin name %q: want a letter, then letters, digits, \"_\", \"-\" or \".\"", name)
		}
	}
	if _, ok := builtins[name]; ok || name == "condition" {
		return fmt.Errorf("rules: plugin name %q is the name of a built-in rule", name)
	}
	return nil
}
