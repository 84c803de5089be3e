package reqfacts

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/tailorhq/tailor/rules"
)

const (
	chromeUA        = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	firefoxUA       = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	safariUA        = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	iphoneUA        = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	ipadUA          = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	androidUA       = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
	androidTabletUA = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

func TestIsBot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ua   string
		want bool
	}{
		{"", true},
		{"curl/8.5.0", true},
		{"Wget/1.21.4", true},
		{"Go-http-client/1.1", true},
		{"Go-http-client/2.0", true},
		{"python-requests/2.32.3", true},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", true},
		{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", true},
		{"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)", true},
		{"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", true},
		{"okhttp/4.12.0", true},
		{"axios/1.7.2", true},
		{"Java/17.0.2", true},
		{"CURL/7.0 IN CAPITALS", true},
		{strings.Repeat("x", 600) + "Googlebot", false}, // past the 512 bytes looked at
		{chromeUA, false},
		{firefoxUA, false},
		{safariUA, false},
		{iphoneUA, false},
		{ipadUA, false},
		{androidUA, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.ua != "" {
			r.Header.Set("User-Agent", tt.ua)
		}
		if got := IsBot(r); got != tt.want {
			t.Errorf("IsBot(%.60q) = %v, want %v", tt.ua, got, tt.want)
		}
	}
}

func TestDeviceClass(t *testing.T) {
	t.Parallel()
	tests := []struct{ ua, want string }{
		{"", "desktop"},
		{chromeUA, "desktop"},
		{firefoxUA, "desktop"},
		{safariUA, "desktop"},
		{iphoneUA, "mobile"},
		{androidUA, "mobile"},
		{ipadUA, "tablet"},
		{androidTabletUA, "tablet"},
		{"Mozilla/5.0 (Linux; U; en-us; KFAPWI Build/JDQ39) Tablet", "tablet"},
		{"Opera/9.80 (J2ME/MIDP; Opera Mini/9.80; U; en) Presto/2.12 Mobi", "mobile"},
	}
	for _, tt := range tests {
		got := DeviceClass(tt.ua)
		if got != tt.want {
			t.Errorf("DeviceClass(%.60q) = %q, want %q", tt.ua, got, tt.want)
		}
		found := false
		for _, d := range Devices {
			found = found || d == got
		}
		if !found {
			t.Errorf("DeviceClass(%.60q) = %q, not one of Devices %v", tt.ua, got, Devices)
		}
	}
}

func TestRefererHost(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 250) + ".com"
	tests := []struct{ ref, want string }{
		{"", ""},
		{"not a url", ""},
		{"/relative/path", ""},
		{"https://www.google.com/search?q=x", "www.google.com"},
		{"https://News.Example.COM/a", "news.example.com"},
		{"http://example.com:8080/x", "example.com"},
		{"http://example.com?q=1", "example.com"},
		{"http://example.com#top", "example.com"},
		{"https://user:pass@example.com/", "example.com"},
		{"https://a@b@example.com/", "example.com"},
		{"http://[2001:db8::1]:443/x", "2001:db8::1"},
		{"http://[2001:db8::1/x", "[2001:db8::1"},
		{"android-app://com.google.android.gm/", "com.google.android.gm"},
		{"https://" + long + "/", ""}, // longer than a host may be
	}
	for _, tt := range tests {
		if got := RefererHost(tt.ref); got != tt.want {
			t.Errorf("RefererHost(%.60q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		target  string
		bot     bool
		header  map[string]string
		country string // the country header's name
		want    rules.Facts
	}{
		{name: "plain", target: "/shop/bats", header: map[string]string{"User-Agent": chromeUA},
			want: rules.Facts{Path: "/shop/bats", Device: "desktop"}},
		{name: "bot device", target: "/", bot: true, header: map[string]string{"User-Agent": iphoneUA},
			want: rules.Facts{Path: "/", Device: "bot"}},
		{name: "external referrer", target: "/", header: map[string]string{"User-Agent": iphoneUA, "Referer": "https://WWW.Google.com/search"},
			want: rules.Facts{Path: "/", Device: "mobile", Referrer: "www.google.com"}},
		{name: "own host is no referrer", target: "http://shop.example:8080/b", header: map[string]string{"Referer": "https://SHOP.example/a"},
			want: rules.Facts{Path: "/b", Device: "desktop"}},
		{name: "utm", target: "/?utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale&x=1",
			want: rules.Facts{Path: "/", Device: "desktop", Source: "news letter", Medium: "email", Campaign: "spring sale"}},
		{name: "utm last wins, bad escapes kept raw", target: "/?utm_source=a&utm_source=b&utm_medium=%zz&utm_campaignx=no",
			want: rules.Facts{Path: "/", Device: "desktop", Source: "b", Medium: "%zz"}},
		{name: "utm cut at 100 bytes", target: "/?utm_campaign=" + strings.Repeat("c", 150),
			want: rules.Facts{Path: "/", Device: "desktop", Campaign: strings.Repeat("c", 100)}},
		{name: "utm cut at a rune boundary", target: "/?utm_source=" + strings.Repeat("a", 99) + "%C3%A9",
			want: rules.Facts{Path: "/", Device: "desktop", Source: strings.Repeat("a", 99)}},
		{name: "long path cut", target: "/" + strings.Repeat("p", 700),
			want: rules.Facts{Path: "/" + strings.Repeat("p", 511), Device: "desktop"}},
		{name: "country upper-cased and trimmed", target: "/", header: map[string]string{"CF-IPCountry": " de "}, country: "CF-IPCountry",
			want: rules.Facts{Path: "/", Device: "desktop", Country: "DE"}},
		{name: "country cut at 8", target: "/", header: map[string]string{"CF-IPCountry": "abcdefghijkl"}, country: "CF-IPCountry",
			want: rules.Facts{Path: "/", Device: "desktop", Country: "ABCDEFGH"}},
		{name: "country cut at a character boundary", target: "/", header: map[string]string{"CF-IPCountry": "abcdefgé"}, country: "CF-IPCountry",
			want: rules.Facts{Path: "/", Device: "desktop", Country: "ABCDEFG"}},
		{name: "country header not configured", target: "/", header: map[string]string{"CF-IPCountry": "DE"},
			want: rules.Facts{Path: "/", Device: "desktop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", tt.target, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if got := Of(r, tt.bot, 512, tt.country); got != tt.want {
				t.Errorf("Of = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestOfLongRequestLine checks that facts taken from a long request line
// are copies: the events that keep them must not keep the whole line.
func TestOfLongRequestLine(t *testing.T) {
	t.Parallel()
	target := "/x?utm_source=s&pad=" + strings.Repeat("q", 8<<10)
	r := httptest.NewRequest("GET", target, nil)
	f := Of(r, false, 512, "")
	if f.Path != "/x" || f.Source != "s" {
		t.Fatalf("Of = %+v, want path /x and source s", f)
	}
	for name, v := range map[string]string{"Path": f.Path, "Source": f.Source} {
		if inside(r.RequestURI, v) {
			t.Errorf("%s shares memory with the request line", name)
		}
	}
}

// inside reports whether s lies within the memory of line.
func inside(line, s string) bool {
	if s == "" {
		return false
	}
	b := uintptr(unsafe.Pointer(unsafe.StringData(line)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return b <= p && p < b+uintptr(len(line))
}

// FuzzOf checks that Of never panics and keeps its bounds, whatever the
// request line and headers.
func FuzzOf(f *testing.F) {
	f.Add("/a/b?utm_source=x&utm_medium=y&utm_campaign=z", chromeUA, "https://ref.example/p", "de", 512)
	f.Add("/?utm_source=%ff%fe", "", "http://[::1", " ", 1)
	f.Add("/"+strings.Repeat("é", 300), iphoneUA, "://", strings.Repeat("x", 20), 3)
	f.Fuzz(func(t *testing.T, target, ua, ref, country string, pathBytes int) {
		pathBytes = 1 + abs(pathBytes)%2048
		r, err := http.NewRequest("GET", "http://shop.example/", nil)
		if err != nil {
			t.Fatal(err)
		}
		// Set the parts directly: the fuzzer's strings need not parse.
		r.URL.Path, r.URL.RawQuery, _ = strings.Cut(target, "?")
		r.RequestURI = target
		r.Header["User-Agent"] = []string{ua}
		r.Header["Referer"] = []string{ref}
		r.Header["X-Country"] = []string{country}
		got := Of(r, IsBot(r), pathBytes, "X-Country")
		if len(got.Path) > pathBytes {
			t.Errorf("Path of %d bytes, bound %d", len(got.Path), pathBytes)
		}
		if utf8.ValidString(r.URL.Path) && !utf8.ValidString(got.Path) {
			t.Errorf("Path %q cut inside a rune", got.Path)
		}
		for name, v := range map[string]string{"Source": got.Source, "Medium": got.Medium, "Campaign": got.Campaign} {
			if len(v) > maxUTM {
				t.Errorf("%s of %d bytes, bound %d", name, len(v), maxUTM)
			}
		}
		if len(got.Referrer) > 253 {
			t.Errorf("Referrer of %d bytes", len(got.Referrer))
		}
		if strings.ContainsAny(got.Referrer, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Errorf("Referrer %q not lower-case", got.Referrer)
		}
		if len(got.Country) > 8 || strings.ContainsAny(got.Country, "abcdefghijklmnopqrstuvwxyz") {
			t.Errorf("Country %q: longer than 8 bytes or not upper-case", got.Country)
		}
		switch got.Device {
		case "bot", "desktop", "mobile", "tablet":
		default:
			t.Errorf("Device %q", got.Device)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestAgentCache checks that what agentOf remembers is what the scans
// say, however often and from however many goroutines a User-Agent comes,
// including two that share a slot and one too long to be remembered.
func TestAgentCache(t *testing.T) {
	t.Parallel()
	uas := []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X)",
		"curl/8.5.0",
		"Mozilla/5.0 (X11; Linux x86_64) " + strings.Repeat("x", maxAgentLen),
		"",
	}
	for i := range 3000 { // more than there are slots: some share one
		uas = append(uas, fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0) Chrome/%d.0 Safari/537.36", i))
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2 {
				for _, ua := range uas {
					a := agentOf(ua)
					if a.ua != ua || a.bot != isBot(ua) || a.device != DeviceClass(ua) {
						t.Errorf("agentOf(%q) = %+v, want bot %v, device %q", ua, *a, isBot(ua), DeviceClass(ua))
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// plainRefererHost is RefererHost as first written, each step a call of
// package strings: the reference TestReferrerAgainstReference holds
// RefererHost and Of's referrer to.
func plainRefererHost(ref string) string {
	i := strings.Index(ref, "://")
	if i < 0 {
		return ""
	}
	h := ref[i+3:]
	if j := strings.IndexAny(h, "/?#"); j >= 0 {
		h = h[:j]
	}
	if j := strings.LastIndexByte(h, '@'); j >= 0 {
		h = h[j+1:]
	}
	if strings.HasPrefix(h, "[") {
		if j := strings.IndexByte(h, ']'); j > 0 {
			h = h[1:j]
		}
	} else if j := strings.LastIndexByte(h, ':'); j >= 0 {
		h = h[:j]
	}
	if len(h) > 253 {
		return ""
	}
	if strings.ContainsAny(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		return strings.ToLower(h) // which also maps other letters, and bytes not UTF-8
	}
	return h
}

// TestReferrerAgainstReference checks RefererHost and the referrer Of
// keeps against plainRefererHost, for referrers and hosts combined from
// parts that matter: schemes, user info, ports, IPv6 brackets, upper
// case, non-ASCII letters (whose lower case EqualFold may not equate with
// the letter: the dotted capital I's is i) and invalid UTF-8.
func TestReferrerAgainstReference(t *testing.T) {
	t.Parallel()
	hosts := []string{"shop.example", "Shop.Example", "SHOP.EXAMPLE", "bücher.example", "Bücher.example",
		"\u212aa.example", "ka.example", "Ka.example", "\u0130x.example", "i\u0307x.example", "A\u0130x.example", "aix.example", "a\xffb.example", "A\xffb.example", "a\ufffdb.example",
		"[2001:db8::1]", "[2001:DB8::1]", "2001:db8::1", "[2001:db8::1", "x@shop.example", strings.Repeat("a", 254), ""}
	var refs []string
	for _, h := range hosts {
		for _, form := range []string{"https://%s/p", "http://%s:8080/p?q", "https://u:p@%s#f", "https://a@b@%s", "android-app://%s", "%s/p", "https://%s?x=/y"} {
			refs = append(refs, fmt.Sprintf(form, h))
		}
	}
	for _, ref := range refs {
		want := plainRefererHost(ref)
		if got := RefererHost(ref); got != want {
			t.Errorf("RefererHost(%q) = %q, want %q", ref, got, want)
		}
		for _, host := range hosts {
			for _, port := range []string{"", ":8080"} {
				r := httptest.NewRequest("GET", "/", nil)
				r.Host = host + port
				r.Header.Set("Referer", ref)
				wantRef := want
				if strings.EqualFold(want, hostOnly(r.Host)) {
					wantRef = ""
				}
				if got := Of(r, false, 512, "").Referrer; got != wantRef {
					t.Errorf("Of: Referer %q, Host %q: referrer %q, want %q", ref, r.Host, got, wantRef)
				}
			}
		}
	}
}
