package otel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailorhq/tailor/middleware"
	tailorotel "github.com/tailorhq/tailor/middleware/otel"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A Personalizer reporting its spans. A site would give a TracerProvider
// with an OTLP exporter, and wrap the handler in otelhttp.NewHandler so
// that tailor's spans are children of the request's; here an in-memory
// recorder shows them.
func Example() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())

	engine, _ := rules.NewEngine(rules.Segment{Name: "returning", Rule: rules.Visits(1)})
	p, err := middleware.New(middleware.Config{
		Keys:   []middleware.KeyPair{{Hash: []byte("0123456789abcdef0123456789abcdef"), Block: []byte("fedcba9876543210fedcba9876543210")}},
		Store:  memory.New(store.Limits{}),
		Engine: engine,
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	tel, err := tailorotel.New(p, tailorotel.Config{TracerProvider: tp})
	if err != nil {
		panic(err)
	}
	defer tel.Close()

	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	get := func(ctx context.Context, c []*http.Cookie) []*http.Cookie {
		r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
		for _, c := range c {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result().Cookies()
	}
	cookie := get(context.Background(), nil) // a new visitor
	// They come back: their profile is loaded and kept. The request's own
	// span is the one otelhttp would make.
	ctx, req := tp.Tracer("example").Start(context.Background(), "GET /")
	get(ctx, cookie)
	req.End()

	// The spans of the request's trace, children under their parents.
	var print func(parent trace.SpanID, depth int)
	print = func(parent trace.SpanID, depth int) {
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() != req.SpanContext().TraceID() || s.Parent().SpanID() != parent {
				continue
			}
			fmt.Printf("%*s%s", 2*depth, "", s.Name())
			for _, a := range s.Attributes() {
				if a.Key == "tailor.segments" || a.Key == "tailor.store.found" {
					fmt.Printf(" %s=%s", a.Key, a.Value.Emit())
				}
			}
			fmt.Println()
			print(s.SpanContext().SpanID(), depth+1)
		}
	}
	print(trace.SpanID{}, 0)
	// Output:
	// GET /
	//   tailor.identify
	//     tailor.load
	//       tailor.store.Load tailor.store.found=false
	//   tailor.classify tailor.segments=["returning"]
}
