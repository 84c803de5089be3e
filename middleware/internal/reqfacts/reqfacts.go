// Package reqfacts reads what a request tells about its visitor, before
// any profile: device class, referring host, UTM campaign, country, and
// whether it comes from a crawler.
package reqfacts

import (
	"bytes"
	"hash/maphash"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// botTokens are lower-case substrings of the user agents of crawlers,
// monitors, link previewers and HTTP libraries.
var botTokens = []string{
	"bot", "crawl", "spider", "slurp", "scrape", "archiver", "fetcher",
	"facebookexternalhit", "mediapartners", "lighthouse", "pingdom",
	"uptime", "monitor", "preview", "curl/", "wget/", "python-requests",
	"python-urllib", "go-http-client", "okhttp", "java/", "libwww", "httpclient",
	"axios/", "node-fetch", "headlesschrome/bot",
}

// IsBot reports whether r comes from a known crawler, monitor or
// HTTP library, by its User-Agent, or has no User-Agent at all.
// Note that Go's own HTTP client counts as a bot: set a browser-like
// User-Agent in tests that must be tracked.
func IsBot(r *http.Request) bool {
	ua := Header(r.Header, "User-Agent")
	if ua == "" {
		return true
	}
	return agentOf(ua).bot
}

// An agent is what a User-Agent tells: crawler or not, device class.
type agent struct {
	ua     string
	bot    bool
	device string
}

// agents remembers the agents of recent User-Agents, at most one per
// slot (the last seen of those whose hash picks it), so that a browser
// seen before costs a hash and a comparison instead of scans for tokens.
// Its memory is bounded: len(agents) entries of at most maxAgentLen
// bytes. It is safe for concurrent use, and holds only what isBot and
// DeviceClass compute from the User-Agent alone.
var (
	agents    [1024]atomic.Pointer[agent]
	agentSeed = maphash.MakeSeed()
)

const maxAgentLen = 512

// agentOf returns what ua tells, from agents when it is there.
func agentOf(ua string) *agent {
	if len(ua) > maxAgentLen {
		return &agent{ua: ua, bot: isBot(ua), device: DeviceClass(ua)}
	}
	slot := &agents[maphash.String(agentSeed, ua)%uint64(len(agents))]
	if a := slot.Load(); a != nil && a.ua == ua {
		return a
	}
	a := &agent{ua: strings.Clone(ua), bot: isBot(ua), device: DeviceClass(ua)}
	slot.Store(a)
	return a
}

// isBot reports whether the User-Agent ua names a crawler, monitor or
// HTTP library.
func isBot(ua string) bool {
	var buf [512]byte
	n := copy(buf[:], ua)
	lower := buf[:n]
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	// One pass: at each byte, try only the tokens starting with it.
	for i, c := range lower {
		for _, t := range botByFirst[c] {
			if bytes.HasPrefix(lower[i:], t) {
				return true
			}
		}
	}
	return false
}

// botByFirst indexes botTokens by their first byte.
var botByFirst = func() (idx [256][][]byte) {
	for _, t := range botTokens {
		idx[t[0]] = append(idx[t[0]], []byte(t))
	}
	return idx
}()

// Devices are the classes DeviceClass returns.
var Devices = []string{"desktop", "mobile", "tablet"}

// DeviceClass classifies a user agent as "mobile", "tablet" or "desktop".
func DeviceClass(ua string) string {
	switch {
	case strings.Contains(ua, "iPad") || strings.Contains(ua, "Tablet"):
		return "tablet"
	case strings.Contains(ua, "Android") && !strings.Contains(ua, "Mobile"):
		return "tablet"
	case strings.Contains(ua, "Mobi") || strings.Contains(ua, "iPhone") || strings.Contains(ua, "Android"):
		return "mobile"
	}
	return "desktop"
}

// Of returns what r tells about the visitor; bot says r comes from a
// crawler, countryHeader names the header that holds the country code, if
// any. Its strings are bounded here already (the path at pathBytes, the
// referrer host at 253 bytes, UTM values at maxUTM), so that what a
// request queues for the store is small; the fold bounds them again.
func Of(r *http.Request, bot bool, pathBytes int, countryHeader string) rules.Facts {
	f := rules.Facts{Path: store.Truncate(r.URL.Path, pathBytes)}
	if bot {
		f.Device = "bot"
	} else {
		f.Device = agentOf(Header(r.Header, "User-Agent")).device
	}
	if ref, upper, ascii := refererHost(Header(r.Header, "Referer")); ref != "" {
		if !upper || ascii {
			// Lower-casing ASCII letters changes nothing to EqualFold:
			// only a referrer kept is lower-cased (and copied).
			if !strings.EqualFold(ref, hostOnly(r.Host)) {
				f.Referrer = lower(ref, upper)
			}
		} else if ref = strings.ToLower(ref); !strings.EqualFold(ref, hostOnly(r.Host)) {
			f.Referrer = ref
		}
	}
	if q := r.URL.RawQuery; strings.Contains(q, "utm_") {
		f.Source, f.Medium, f.Campaign = utm(q)
	}
	if len(r.RequestURI) > 4<<10 {
		// The path and UTM values may be parts of the long request line:
		// copy them, so that the events that keep them do not keep it.
		f.Path, f.Source = strings.Clone(f.Path), strings.Clone(f.Source)
		f.Medium, f.Campaign = strings.Clone(f.Medium), strings.Clone(f.Campaign)
	}
	if countryHeader != "" {
		f.Country = store.Truncate(strings.ToUpper(strings.TrimSpace(r.Header.Get(countryHeader))), 8)
	}
	return f
}

// Header returns the first value of h's header key, as h.Get does, for
// a key already in canonical form: it skips h.Get's check of the key's
// form, on a path that reads several headers per request.
func Header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// RefererHost returns the lower-case host (without port) of a Referer URL.
func RefererHost(ref string) string {
	h, upper, _ := refererHost(ref)
	return lower(h, upper)
}

// lower returns h lower-cased if it has upper-case ASCII letters.
func lower(h string, upper bool) string {
	if upper {
		return strings.ToLower(h)
	}
	return h
}

// refererHost returns the host (without port) of a Referer URL as it is
// written, without copying it, whether it has upper-case ASCII letters,
// and whether it is all ASCII; "" if ref has none or one longer than a
// host may be. One pass finds the end of the authority and its last '@'.
func refererHost(ref string) (h string, upper, ascii bool) {
	i := strings.Index(ref, "://")
	if i < 0 {
		return "", false, true
	}
	h = ref[i+3:]
	at := -1
	for j := 0; j < len(h); j++ {
		switch h[j] {
		case '/', '?', '#':
			h = h[:j]
		case '@':
			at = j
			continue
		default:
			continue
		}
		break
	}
	h = hostOnly(h[at+1:])
	if len(h) > 253 {
		return "", false, true
	}
	ascii = true
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			upper = true
		} else if c >= 0x80 {
			ascii = false
		}
	}
	return h, upper, ascii
}

func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if j := strings.IndexByte(h, ']'); j > 0 {
			return h[1:j]
		}
		return h
	}
	if j := strings.LastIndexByte(h, ':'); j >= 0 {
		return h[:j]
	}
	return h
}

// maxUTM is the longest UTM value kept, in bytes.
const maxUTM = 100

// utm returns the utm_source, utm_medium and utm_campaign parameters of a
// raw query, each cut to at most maxUTM bytes at a UTF-8 boundary.
func utm(raw string) (source, medium, campaign string) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		var dst *string
		switch k {
		case "utm_source":
			dst = &source
		case "utm_medium":
			dst = &medium
		case "utm_campaign":
			dst = &campaign
		default:
			continue
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		*dst = store.Truncate(v, maxUTM)
	}
	return
}
