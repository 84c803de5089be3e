package otel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	tailorotel "github.com/tailorhq/tailor/middleware/otel"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// BenchmarkInstrumented measures what instrumentation adds to a returning
// visitor's request: off (no Telemetry), traced (every span sampled and
// recorded by the SDK, none exported) and metrics.
func BenchmarkInstrumented(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  *tailorotel.Config
	}{
		{"off", nil},
		{"traced", &tailorotel.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))}},
		{"metrics", &tailorotel.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := newP(b, memory.New(store.Limits{}))
			if c.cfg != nil {
				tel, err := tailorotel.New(p, *c.cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer tel.Close()
			}
			h := p.Handler(echoID)
			req := func() *http.Request {
				r := httptest.NewRequest("GET", "/products/moneyball", nil)
				r.Header.Set("User-Agent", browserUA)
				return r
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req())
			r := req()
			r.AddCookie(w.Result().Cookies()[0])
			w = httptest.NewRecorder()
			h.ServeHTTP(w, r) // the return: kept from now on
			r = req()
			r.AddCookie(w.Result().Cookies()[0])
			h.ServeHTTP(httptest.NewRecorder(), r)
			p.Flush(context.Background())
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(discard{}, r)
			}
		})
	}
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
