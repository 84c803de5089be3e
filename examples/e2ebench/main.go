// Command e2ebench measures what tailor costs end to end, side by side
// with the bare handler and with a session middleware, over loopback:
//
//	cd examples/e2ebench && go run . [-rounds 5] [-duration 10s] [-threads 2] [-conns 50] [-visitors 1000] [-shop]
//
// It starts three servers, each in a process of its own (this program,
// run again with -serve), of one hello page:
//
//   - bare: the page, net/http alone;
//   - scs: the page wrapped in scs v2 LoadAndSave, the page reading a
//     value of the visitor's session (a read-only session: nothing is
//     saved);
//   - tailor: the page wrapped in tailor's middleware.Personalizer
//     Handler, the page calling Visitor.In, visitors kept in the embedded
//     bbolt store, five segments.
//
// Before measuring it makes -visitors returning visitors, each with a
// browser User-Agent: a session on scs, and on tailor a cookie that was
// issued, came back (so the visitor is kept) and was re-issued, its
// profile cached. Then each round loads the three servers one after the
// other, in an order that turns from round to round, with the same
// requests (the visitors taking turns, each request carrying both
// cookies): with wrk (-threads, -conns, -duration) when it is on the PATH,
// else with a Go load generator of -conns connections. It prints each
// figure, each round's ratios to bare, and the median ratio with its
// spread; then tailor's counters, which show that the visitors were
// returning ones found in the cache.
//
// With -cpuprofile it writes a CPU profile of the tailor server during
// the last round's load, and with -shop the shop's profile beside it
// (the same name, with .shop added).
//
// With -shop it also serves the demo shop (examples/shop) and loads its
// template home page (personalised hero, slots, recommendations) with
// returning visitors, taking a CPU profile of the shop's process
// meanwhile, and prints tailor's share of that CPU: the samples whose
// innermost frame of either side's code is tailor's (its packages, and
// the libraries only it calls: ristretto, securecookie, bbolt) rather
// than the shop's own.
//
// Every server listens on 127.0.0.1 only; every load is bounded by
// -duration; the servers end with this program.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	serve := flag.String("serve", "", "run as the server `kind` (bare, scs, tailor, shop) instead of measuring; used by the measuring process")
	dir := flag.String("dir", "", "with -serve: directory for the server's files")
	rounds := flag.Int("rounds", 5, "rounds of measurement, each loading every server once")
	duration := flag.Duration("duration", 10*time.Second, "how long each load lasts")
	threads := flag.Int("threads", 2, "wrk threads")
	conns := flag.Int("conns", 50, "connections kept open to the server under load")
	visitors := flag.Int("visitors", 1000, "returning visitors taking turns")
	shop := flag.Bool("shop", false, "also measure tailor's share of the CPU of the demo shop's home page")
	noWrk := flag.Bool("no-wrk", false, "use the Go load generator even if wrk is installed")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the tailor server during the last round's load to `file` (and with -shop, the shop's to file.shop)")
	flag.Parse()
	if *serve != "" {
		if err := runServer(*serve, *dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2ebench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := config{profile: *profile, rounds: *rounds, duration: *duration, threads: *threads, conns: *conns, visitors: *visitors, shop: *shop}
	if !*noWrk {
		c.wrk, _ = exec.LookPath("wrk")
	}
	if err := measure(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
}

type config struct {
	rounds, threads, conns, visitors int
	duration                         time.Duration
	shop                             bool
	wrk                              string // path of wrk, or "" for the Go load generator
	profile                          string // where to write the tailor server's CPU profile, if anywhere
}

// browserUAs are the User-Agents the visitors take turns with: tailor
// does not track crawlers, so the load must look like browsers.
var browserUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
}

// A server is a child process serving one kind of page on loopback.
type server struct {
	kind string
	url  string
	cmd  *exec.Cmd
	in   io.WriteCloser // closing it ends the server
}

// start runs this program again as a server of kind, and waits for the
// address it listens on.
func start(ctx context.Context, kind, dir string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-serve", kind, "-dir", dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	s := &server{kind: kind, cmd: cmd, in: in}
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			s.stop()
			return nil, fmt.Errorf("server %s did not start (it said %q)", kind, l)
		}
		s.url = "http://" + addr
		return s, nil
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("server %s did not start within a minute", kind)
	}
}

func (s *server) stop() {
	s.in.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// A visitor is the headers of one returning visitor's requests.
type visitor struct{ cookie, ua string }

func measure(ctx context.Context, c config, out io.Writer) error {
	dir, err := os.MkdirTemp("", "e2ebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kinds := []string{"bare", "scs", "tailor"}
	servers := map[string]*server{}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, k := range kinds {
		s, err := start(ctx, k, dir)
		if err != nil {
			return err
		}
		servers[k] = s
	}
	gen := "wrk " + c.wrk
	if c.wrk == "" {
		gen = "the Go load generator (wrk is not on the PATH)"
	}
	fmt.Fprintf(out, "e2ebench: %d returning visitors, %d rounds of %v per server, %d connections, load by %s\n",
		c.visitors, c.rounds, c.duration, c.conns, gen)
	vs, err := makeVisitors(ctx, servers["scs"].url, servers["tailor"].url, c.visitors)
	if err != nil {
		return err
	}
	before, err := stats(servers["tailor"].url)
	if err != nil {
		return err
	}
	figures := map[string][]float64{}
	for round := range c.rounds {
		order := slices.Clone(kinds)
		for range round % len(kinds) {
			order = append(order[1:], order[0])
		}
		got := map[string]float64{}
		for _, k := range order {
			profiling := c.profile != "" && k == "tailor" && round == c.rounds-1
			if profiling {
				if err := post(servers[k].url + "/_e2e/profile/start"); err != nil {
					return err
				}
			}
			rps, err := load(ctx, c, servers[k].url+"/", vs, dir)
			if profiling {
				if err := post(servers[k].url + "/_e2e/profile/stop"); err != nil {
					return err
				}
				if err := copyFile(c.profile, filepath.Join(dir, "tailor.pprof")); err != nil {
					return err
				}
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, k, err)
			}
			got[k] = rps
			figures[k] = append(figures[k], rps)
		}
		fmt.Fprintf(out, "round %d (%s): bare %.0f req/s, scs %.0f (%.2f of bare), tailor %.0f (%.2f of bare)\n",
			round+1, strings.Join(order, ", "), got["bare"], got["scs"], got["scs"]/got["bare"], got["tailor"], got["tailor"]/got["bare"])
	}
	after, err := stats(servers["tailor"].url)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n| | requests/s (median) | share of bare (median of rounds) | spread of the share |\n|---|---|---|---|\n")
	for _, k := range kinds {
		var ratios []float64
		for i := range figures[k] {
			ratios = append(ratios, figures[k][i]/figures["bare"][i])
		}
		fmt.Fprintf(out, "| %s | %.0f | %.2f | %.2f–%.2f |\n", label[k], median(figures[k]), median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
	d := func(k string) int64 { return after[k] - before[k] }
	fmt.Fprintf(out, "\ntailor during the loads: %d requests, %d new visitors, %d cache hits, %d cache misses, %d events recorded, %d flushed, %d dropped\n",
		d("Requests"), d("NewVisitors"), d("CacheHits"), d("CacheMisses"), d("Events"), d("Flushed"), d("Dropped"))
	if c.shop {
		if err := measureShop(ctx, c, dir, out); err != nil {
			return fmt.Errorf("shop: %w", err)
		}
	}
	return nil
}

var label = map[string]string{"bare": "bare net/http", "scs": "scs LoadAndSave", "tailor": "tailor"}

// makeVisitors makes n returning visitors: a session on the scs server
// (its login page puts a value in it), and on the tailor server a cookie
// issued, brought back and re-issued, then used a few times.
func makeVisitors(ctx context.Context, scsURL, tailorURL string, n int) ([]visitor, error) {
	get := warmer(ctx)
	vs := make([]visitor, n)
	for i := range vs {
		ua := browserUAs[i%len(browserUAs)]
		resp, err := get(scsURL+"/login", ua, "")
		if err != nil {
			return nil, err
		}
		sess, err := cookieOf(resp, "session")
		if err != nil {
			return nil, err
		}
		tc, err := returningCookie(get, cookieOf, tailorURL, ua)
		if err != nil {
			return nil, err
		}
		vs[i] = visitor{cookie: tc + "; " + sess, ua: ua}
	}
	return vs, nil
}

// returningCookie makes a returning visitor of the tailor server at url
// and returns its cookie: issued with the first page view, brought back
// (the view is recorded, the cookie re-issued without it), then used.
func returningCookie(get func(url, ua, cookie string) (*http.Response, error), cookieOf func(*http.Response, string) (string, error), url, ua string) (string, error) {
	resp, err := get(url+"/", ua, "")
	if err != nil {
		return "", err
	}
	first, err := cookieOf(resp, "tailor")
	if err != nil {
		return "", err
	}
	if resp, err = get(url+"/", ua, first); err != nil {
		return "", err
	}
	back, err := cookieOf(resp, "tailor")
	if err != nil {
		return "", err
	}
	for range 2 {
		resp, err := get(url+"/", ua, back)
		if err != nil {
			return "", err
		}
		if len(resp.Cookies()) > 0 {
			return "", fmt.Errorf("GET %s: a returning visitor's cookie was re-issued (%v)", url, resp.Cookies())
		}
	}
	return back, nil
}

// stats returns the tailor server's counters.
func stats(url string) (map[string]int64, error) {
	resp, err := http.Get(url + "/_e2e/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]int64{}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return m, nil
}

// load loads url with the visitors' requests for c.duration and returns
// the requests per second answered.
func load(ctx context.Context, c config, url string, vs []visitor, dir string) (float64, error) {
	if c.wrk == "" {
		return goLoad(ctx, c, url, vs)
	}
	script := filepath.Join(dir, "visitors.lua")
	if _, err := os.Stat(script); err != nil {
		if err := writeScript(script, vs); err != nil {
			return 0, err
		}
	}
	secs := max(int(c.duration/time.Second), 1)
	cmd := exec.CommandContext(ctx, c.wrk, "-t", strconv.Itoa(c.threads), "-c", strconv.Itoa(c.conns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "5s", "-s", script, url)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %w: %s", err, outb)
	}
	o := string(outb)
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(o); m != nil {
		return 0, fmt.Errorf("wrk: %s responses were not 2xx or 3xx:\n%s", m[1], o)
	}
	if m := regexp.MustCompile(`Socket errors: .*`).FindString(o); m != "" {
		return 0, fmt.Errorf("wrk: %s:\n%s", m, o)
	}
	m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindStringSubmatch(o)
	if m == nil {
		return 0, fmt.Errorf("wrk: no Requests/sec in its output:\n%s", o)
	}
	return strconv.ParseFloat(m[1], 64)
}

// writeScript writes the wrk script that sends the visitors' requests in
// turn, each thread starting at a visitor of its own.
func writeScript(path string, vs []visitor) error {
	var b bytes.Buffer
	b.WriteString("local visitors = {\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "  {%q, %q},\n", v.cookie, v.ua)
	}
	b.WriteString(`}
local reqs = {}
local i = 0
function init(args)
  for k, v in ipairs(visitors) do
    reqs[k] = wrk.format("GET", nil, {["Cookie"] = v[1], ["User-Agent"] = v[2]})
  end
  i = math.random(#reqs)
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
`)
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// goLoad is the load generator used without wrk: c.conns goroutines, each
// with a connection of its own, sending the visitors' requests in turn
// until c.duration has passed.
func goLoad(ctx context.Context, c config, url string, vs []visitor) (float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: c.conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	begin := time.Now()
	for g := range c.conns {
		wg.Go(func() {
			for i := g * len(vs) / c.conns; ctx.Err() == nil; i++ {
				v := vs[i%len(vs)]
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Header.Set("Cookie", v.cookie)
				req.Header.Set("User-Agent", v.ua)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err })
					}
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					once.Do(func() { firstErr = fmt.Errorf("GET %s: %s", url, resp.Status) })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(n.Load()) / time.Since(begin).Seconds(), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measureShop loads the demo shop's home page with returning visitors and
// prints tailor's share of the shop process's CPU.
func measureShop(ctx context.Context, c config, dir string, out io.Writer) error {
	s, err := start(ctx, "shop", dir)
	if err != nil {
		return err
	}
	defer s.stop()
	get := warmer(ctx)
	vs := make([]visitor, c.visitors)
	for i := range vs {
		ua := browserUAs[i%len(browserUAs)]
		ck, err := returningCookie(get, cookieOf, s.url, ua)
		if err != nil {
			return err
		}
		vs[i] = visitor{cookie: ck, ua: ua}
	}
	shopDir := filepath.Join(dir, "shop")
	os.MkdirAll(shopDir, 0o700)
	// Warm up, then profile one load.
	if _, err := load(ctx, config{duration: 2 * time.Second, threads: c.threads, conns: c.conns, wrk: c.wrk}, s.url+"/", vs, shopDir); err != nil {
		return err
	}
	if err := post(s.url + "/_e2e/profile/start"); err != nil {
		return err
	}
	rps, err := load(ctx, c, s.url+"/", vs, shopDir)
	if err != nil {
		return err
	}
	if err := post(s.url + "/_e2e/profile/stop"); err != nil {
		return err
	}
	prof := filepath.Join(dir, "shop.pprof")
	if c.profile != "" {
		if err := copyFile(c.profile+".shop", prof); err != nil {
			return err
		}
	}
	tailor, shop, other, top, err := attribute(ctx, prof)
	if err != nil {
		return err
	}
	total := tailor + shop + other
	fmt.Fprintf(out, "\nshop home page: %.0f req/s; CPU profile of the shop process: tailor %.1f%%, the shop's own code %.1f%%, net/http, runtime and GC %.1f%% (%v sampled)\n",
		rps, 100*tailor.Seconds()/total.Seconds(), 100*shop.Seconds()/total.Seconds(), 100*other.Seconds()/total.Seconds(), total)
	fmt.Fprintf(out, "tailor's share of the CPU spent in the handler (tailor + shop): %.1f%%\n", 100*tailor.Seconds()/(tailor+shop).Seconds())
	fmt.Fprintf(out, "tailor's part by its innermost function on the stack (share of the process's CPU):\n")
	for i, f := range top {
		if i == 12 {
			break
		}
		fmt.Fprintf(out, "  %5.1f%%  %s\n", 100*f.d.Seconds()/total.Seconds(), f.fn)
	}
	return nil
}

func post(url string) error {
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	return nil
}

// attribute reads the CPU profile at path (with go tool pprof -traces)
// and splits its samples between tailor, the shop and the rest: a sample
// goes to the side whose code is the innermost frame of either side on
// its stack; samples with neither (the server's loop, GC) are other, and
// so are those under tailor's response writer passing bytes on (the
// socket's writes).
func attribute(ctx context.Context, path string) (tailor, shop, other time.Duration, top []fnTime, err error) {
	outb, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-traces", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("go tool pprof: %w: %s", err, ee.Stderr)
		}
		return 0, 0, 0, nil, err
	}
	byFn := map[string]time.Duration{}
	var value time.Duration
	side, where := "", ""
	flush := func() {
		switch side {
		case "tailor":
			tailor += value
			byFn[where] += value
		case "shop":
			shop += value
		default:
			other += value
		}
		value, side, where = 0, "", ""
	}
	inTrace := false
	for line := range strings.Lines(string(outb)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "-----------+") {
			if inTrace {
				flush()
			}
			inTrace = true
			continue
		}
		if !inTrace {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		fn := fields[len(fields)-1]
		if len(fields) == 2 && value == 0 {
			d, err := time.ParseDuration(fields[0])
			if err == nil {
				value = d
			}
		}
		if side != "" {
			continue
		}
		switch {
		case strings.HasPrefix(fn, "github.com/tailorhq/tailor/middleware.(*responseWriter).Write"),
			strings.HasPrefix(fn, "github.com/tailorhq/tailor/middleware.(*responseWriter).Flush"):
			// Passing the response's bytes on: below it is net/http's
			// writing (its own work, headers excepted: writeHeaders).
			side = "other"
		case strings.HasPrefix(fn, "github.com/tailorhq/tailor/examples/"):
			side = "shop"
		case strings.HasPrefix(fn, "github.com/tailorhq/tailor/"),
			strings.HasPrefix(fn, "github.com/dgraph-io/ristretto"),
			strings.HasPrefix(fn, "github.com/gorilla/securecookie"),
			strings.HasPrefix(fn, "go.etcd.io/bbolt"):
			side, where = "tailor", fn
		}
	}
	if inTrace && value > 0 {
		flush()
	}
	if tailor+shop+other == 0 {
		return 0, 0, 0, nil, fmt.Errorf("the profile %s has no samples", path)
	}
	for fn, d := range byFn {
		top = append(top, fnTime{fn, d})
	}
	slices.SortFunc(top, func(a, b fnTime) int { return int(b.d - a.d) })
	return tailor, shop, other, top, nil
}

// fnTime is the CPU time attributed to a function.
type fnTime struct {
	fn string
	d  time.Duration
}

func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func newPassword() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// warmer returns a function that GETs a page as a visitor (a User-Agent,
// a Cookie header or ""), reads it whole, and wants 200, without following
// redirects: what preparing visitors needs.
func warmer(ctx context.Context) func(url, ua, cookie string) (*http.Response, error) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(url, ua, cookie string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", ua)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return resp, nil
	}
}

// cookieOf returns the cookie name of resp as "name=value".
func cookieOf(resp *http.Response, name string) (string, error) {
	for _, ck := range resp.Cookies() {
		if ck.Name == name {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("GET %s: no %s cookie", resp.Request.URL, name)
}
