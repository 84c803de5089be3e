package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/metrics"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// Register the metrics in a registry and serve it at /metrics, beside the
// site.
func Example() {
	engine, _ := rules.NewEngine(rules.Segment{Name: "customer", Rule: rules.Purchased(1)})
	p, err := middleware.New(middleware.Config{
		Keys:   []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:  memory.New(store.Limits{}),
		Engine: engine,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	m, err := metrics.New(metrics.Config{Personalizer: p})
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", p.Handler(http.NotFoundHandler()))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "tailor_requests_total") || strings.HasPrefix(line, "tailor_segment_entries_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// tailor_requests_total 0
	// tailor_segment_entries_total{segment="customer"} 0
}
