# Varnish in front of a tailor site whose home page is cacheable
# (middleware.Edge): the cache keys the home page on the variant key, never
# on the visitor. The integration test replaces ORIGIN_PORT with the
# origin's port; a site puts its own backend and cacheable paths.
vcl 4.1;

backend origin {
	.host = "127.0.0.1";
	.port = "ORIGIN_PORT";
}

sub vcl_recv {
	# The key comes from the cookie tailor issued, never from the client's
	# own header.
	unset req.http.Tailor-Variant;
	# Cacheable paths (Edge.Cacheable on the origin): here the home page.
	# A browser in a preview (the tailor_preview link or cookie) always
	# reaches the origin.
	if ((req.method == "GET" || req.method == "HEAD") && req.url ~ "^/(\?.*)?$" &&
	    req.url !~ "[?&]tailor_preview=" && req.http.Cookie !~ "(^|;\s*)tailor_preview=" &&
	    req.http.Cookie ~ "(^|;\s*)tailor_v=[A-Za-z0-9_-]{2,400}\.[A-Za-z0-9_-]{22}(;|$)") {
		set req.http.Tailor-Variant = regsub(req.http.Cookie, "^(.*;\s*)?tailor_v=([A-Za-z0-9_.-]+).*$", "\2");
		# Nothing of the visitor goes to the origin, or into the cache.
		unset req.http.Cookie;
		unset req.http.Authorization;
		return (hash);
	}
	# Everything else (no key yet, other pages, the collection endpoint)
	# goes to the origin with its cookies, uncached.
	return (pass);
}

sub vcl_backend_response {
	# Never keep a response that sets a cookie or that the origin refused
	# to have kept (a key that did not verify gets no-store): no object,
	# not even a hit-for-miss marker, under a key tailor did not issue.
	if (bereq.http.Tailor-Variant &&
	    (beresp.http.Set-Cookie || beresp.http.Cache-Control ~ "(?i)(private|no-store|no-cache)" ||
	     beresp.http.Tailor-Variant != bereq.http.Tailor-Variant)) {
		set beresp.uncacheable = true;
		set beresp.ttl = 0s;
		return (deliver);
	}
}

sub vcl_deliver {
	if (!req.http.Tailor-Variant) {
		set resp.http.X-Cache = "PASS";
	} elsif (obj.hits > 0) {
		set resp.http.X-Cache = "HIT";
	} else {
		set resp.http.X-Cache = "MISS";
	}
}
