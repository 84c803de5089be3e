package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// Mount the dashboard beside the site, outside the Personalizer's handler,
// behind basic authentication.
func ExampleNew() {
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

	dash, err := admin.New(admin.Config{Personalizer: p, Username: "admin", Password: "a long random password"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dash.Close()

	site := http.NewServeMux() // the site's own pages
	root := http.NewServeMux()
	root.Handle(dash.Prefix(), dash)
	root.Handle("/", p.Handler(site))

	for _, password := range []string{"", "a guess", "a long random password"} {
		req := httptest.NewRequest("GET", "/_tailor/admin/rules", nil)
		if password != "" {
			req.SetBasicAuth("admin", password)
		}
		rec := httptest.NewRecorder()
		root.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 401 Basic realm="tailor admin", charset="UTF-8"
	// 401 Basic realm="tailor admin", charset="UTF-8"
	// 200
}

// Without an authorizer, New refuses to make a dashboard anyone could open.
func ExampleNew_noAuthorizer() {
	p, _ := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store: memory.New(store.Limits{}),
	})
	defer p.Close(context.Background())
	_, err := admin.New(admin.Config{Personalizer: p})
	fmt.Println(err)
	// Output:
	// tailor/admin: invalid config: Config.Authorize, Config.Username and Config.Password, or Config.BearerToken: the dashboard shows visitors' data and needs an authorizer (Config.Users and Config.RoleOf are authorizers too; Config.Insecure lets anyone in, for development only)
}
