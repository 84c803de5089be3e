package middleware

import "net/http"

// SignOut ends the tie between the browser of r and the user it identified
// as (see Identify), for a site's sign-out: the response deletes the
// visitor cookie, so that the browser's next request comes as a new
// anonymous visitor, with a new visitor id and none of the user's history
// or segments, as on a first visit. Nothing is erased: the user's profile
// stays, and the browser gets it back when it signs in again (Forget
// erases).
//
// Call it before the response is written: from a handler wrapped by
// Handler (the rest of that request still counts for the user), or from
// any handler with w and r. It does nothing for a visitor who is not
// tracked, who has no cookie to delete.
func (p *Personalizer) SignOut(w http.ResponseWriter, r *http.Request) {
	if v := FromContext(r.Context()); v != nil && v.p == p {
		// The wrapped response writes the header that deletes the cookie,
		// instead of the one that would renew it.
		if v.v.Tracked {
			v.v.ExpireCookie = true
		}
		return
	}
	if v := p.lookup(r, false); v.v.Tracked {
		http.SetCookie(w, p.cookies.Expired(r))
	}
}
