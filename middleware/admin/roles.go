package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// A Role says what a dashboard user may do.
type Role int

const (
	// NoRole lets nobody in: the zero Role.
	NoRole Role = iota
	// Viewer sees every page, read-only: no form that changes anything is
	// shown, and its POST requests get 403.
	Viewer
	// Editor sees what a Viewer sees, and edits, publishes and restores
	// the site's definitions (Config.Definitions).
	Editor
)

// String returns "viewer", "editor" or "none".
func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Editor:
		return "editor"
	}
	return "none"
}

// A User is a dashboard user who signs in with HTTP basic authentication
// (see Config.Users).
type User struct {
	// Name is the user name, and who publications are by. Required,
	// unique.
	Name string
	// Password is compared in constant time. Required.
	Password string
	// Role is Viewer or Editor.
	Role Role
}

// user is who a request is from, once let in.
type user struct {
	Name string
	Role Role
}

// CanEdit reports whether the user may change the definitions.
func (u user) CanEdit() bool { return u.Role == Editor }

type userKey struct{}

// userOf returns the user that ServeHTTP let in with r.
func userOf(r *http.Request) user {
	u, _ := r.Context().Value(userKey{}).(user)
	return u
}

// hashedUser is a User with the SHA-256 of its name and password, compared
// in constant time.
type hashedUser struct {
	name, pass [32]byte
	user       user
}

// authenticate returns who r is from, or ok false and the WWW-Authenticate
// challenge to send (empty for a plain 403). Every configured way is
// tried; the first that accepts r wins, in this order: basic
// authentication (Users, then Username and Password), the bearer token,
// RoleOf, Authorize.
func (h *Handler) authenticate(r *http.Request) (u user, ok bool, challenge string) {
	c := &h.cfg
	if len(h.users) == 0 && c.BearerToken == "" && c.Authorize == nil && c.RoleOf == nil {
		if c.Insecure {
			return user{Name: "anonymous (insecure mode)", Role: Editor}, true, ""
		}
		return user{}, false, ""
	}
	if name, pw, found := r.BasicAuth(); found && len(h.users) > 0 {
		nh, ph := sha256.Sum256([]byte(name)), sha256.Sum256([]byte(pw))
		match := -1
		for i := range h.users {
			// Every user is compared, and both fields of each: no
			// timing tells which failed.
			if subtle.ConstantTimeCompare(nh[:], h.users[i].name[:])&subtle.ConstantTimeCompare(ph[:], h.users[i].pass[:]) == 1 && match < 0 {
				match = i
			}
		}
		if match >= 0 {
			return h.users[match].user, true, ""
		}
	}
	if c.BearerToken != "" {
		if scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Bearer") {
			th := sha256.Sum256([]byte(strings.TrimSpace(tok)))
			if subtle.ConstantTimeCompare(th[:], h.bearer[:]) == 1 {
				return user{Name: "bearer token", Role: Viewer}, true, ""
			}
		}
	}
	if c.RoleOf != nil {
		if name, role := c.RoleOf(r); role == Viewer || role == Editor {
			return user{Name: name, Role: role}, true, ""
		}
	}
	if c.Authorize != nil && c.Authorize(r) {
		return user{Name: "authorized", Role: Viewer}, true, ""
	}
	switch {
	case len(h.users) > 0:
		return user{}, false, `Basic realm="tailor admin", charset="UTF-8"`
	case c.BearerToken != "":
		return user{}, false, `Bearer realm="tailor admin"`
	}
	return user{}, false, ""
}

// hashUsers returns the basic authentication users of c: Users, and
// Username with Password as an Editor.
func hashUsers(c *Config) []hashedUser {
	var out []hashedUser
	add := func(name, pass string, role Role) {
		out = append(out, hashedUser{name: sha256.Sum256([]byte(name)), pass: sha256.Sum256([]byte(pass)), user: user{Name: name, Role: role}})
	}
	if c.Username != "" {
		add(c.Username, c.Password, Editor)
	}
	for _, u := range c.Users {
		add(u.Name, u.Password, u.Role)
	}
	return out
}

// guard refuses what r may not do, before the mux sees it: a request that
// is not safe (a POST) from another site (http.CrossOriginProtection: the
// browser's Sec-Fetch-Site header, or an Origin of another host than the
// Host), or from a Viewer, or whose form is larger than maxForm or
// unreadable; it reads the form of the others. It reports whether r may
// go on.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if err := h.csrf.Check(r); err != nil {
		h.errorPage(w, r, http.StatusForbidden,
			"This request came from another site, and was refused: the dashboard only accepts changes sent from its own pages. Nothing was changed.")
		return false
	}
	if !userOf(r).CanEdit() {
		h.errorPage(w, r, http.StatusForbidden,
			"You are signed in as a viewer ("+userOf(r).Name+"): viewers see the dashboard but cannot change anything. Ask an editor. Nothing was changed.")
		return false
	}
	// The form is read here, within a bound: read later by FormValue, a
	// form too large reads as empty fields, and a multipart one is
	// spooled to disk whatever its size.
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	var err error
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		err = r.ParseMultipartForm(maxForm)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.errorPage(w, r, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("The form sent is larger than the %d MiB the dashboard accepts. Nothing was changed.", maxForm>>20))
			return false
		}
		h.errorPage(w, r, http.StatusBadRequest, "The form sent could not be read ("+err.Error()+"). Nothing was changed.")
		return false
	}
	return true
}

// maxForm bounds the body of a request that changes something: a form
// with the text of a segments or slots file, far larger than any a site
// writes.
const maxForm = 8 << 20

// withUser returns r with u in its context, for the handlers.
func withUser(r *http.Request, u user) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), userKey{}, u))
}

// checkUsers returns the problems of c.Users.
func checkUsers(c *Config) []error {
	var errs []error
	seen := map[string]bool{c.Username: c.Username != ""}
	for i, u := range c.Users {
		switch {
		case u.Name == "" || u.Password == "":
			errs = append(errs, fmt.Errorf("Config.Users[%d]: a name and a password are required", i))
		case seen[u.Name]:
			errs = append(errs, fmt.Errorf("Config.Users[%d]: user %q is already defined", i, u.Name))
		}
		if u.Role != Viewer && u.Role != Editor {
			errs = append(errs, fmt.Errorf("Config.Users[%d]: role %d of %q is neither Viewer nor Editor", i, int(u.Role), u.Name))
		}
		seen[u.Name] = true
	}
	return errs
}
