package reqfacts

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkOf measures what a request tells about its visitor, for a
// browser seen before: page is a page view from another site with a UTM
// source, as the middleware's BenchmarkHandler requests; plain is one
// without referrer nor query; internal comes from the site itself.
func BenchmarkOf(b *testing.B) {
	for _, bc := range []struct{ name, target, ref string }{
		{"page", "/products/moneyball?utm_source=news", "https://www.example.org/page"},
		{"plain", "/products/moneyball", ""},
		{"internal", "/products/moneyball?color=red", "https://example.com/products/moneyball"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "http://example.com"+bc.target, nil)
			r.Header.Set("User-Agent", chromeUA)
			if bc.ref != "" {
				r.Header.Set("Referer", bc.ref)
			}
			b.ReportAllocs()
			for b.Loop() {
				Of(r, false, 512, "")
			}
		})
	}
}
