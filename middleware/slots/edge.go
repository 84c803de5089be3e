package slots

import "github.com/tailorhq/tailor/middleware"

// PickVariant returns the key of the variant of the named slot that Pick
// shows the visitor ("" for an unknown slot), recording the exposure to an
// experiment as Pick does. It makes *Engine a middleware.VariantPicker, so
// that pages a cache at the edge keeps can vary on slots:
//
//	edge, err := p.Edge(middleware.EdgeConfig{Slots: []string{"hero"}, Picker: engine})
//
// On a cacheable page (Edge.Cacheable), Pick shows the variant the page's
// variant key holds.
func (e *Engine) PickVariant(v *middleware.Visitor, slot string) string {
	return e.Pick(v, slot).Variant
}

var _ middleware.VariantPicker = (*Engine)(nil)
