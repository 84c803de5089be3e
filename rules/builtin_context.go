package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Context selects visitors by the facts of the current request alone, for
// Contextual. Each list that is not empty must hold the request's fact;
// "*" matches any fact that is not empty.
type Context struct {
	// Source, Medium and Campaign are UTM parameters, compared ignoring
	// case.
	Source, Medium, Campaign []string
	// Referrer holds referrer hosts: "google.com" matches google.com and
	// its subdomains; a pattern with "*", "?" or "[" matches with
	// path.Match ("*.google.*").
	Referrer []string
	// Device holds device classes: "desktop", "mobile", "tablet", "bot".
	Device []string
	// Country holds country codes from the geo header, ignoring case.
	Country []string
	// Path holds patterns of the request's path, exact or glob (see
	// PathAuto).
	Path []string
	// Visitor is "new" (first request, no cookie yet), "returning", or ""
	// for both.
	Visitor string
}

// Contextual matches visitors by the facts of the current request (see
// Facts): UTM parameters, referrer, device, country, path, new or
// returning. It needs no profile, so it classifies visitors who are not
// tracked too: "came from the spring newsletter on a phone" is
//
//	Contextual(Context{Campaign: []string{"spring"}, Medium: []string{"email"}, Device: []string{"mobile"}})
func Contextual(c Context) Rule {
	type test struct {
		field Fields
		name  string
		want  []string
		match func(fact, want string) bool
	}
	fold := func(fact, want string) bool { return want == "*" && fact != "" || strings.EqualFold(fact, want) }
	var tests []test
	add := func(f Fields, want []string, match func(string, string) bool) {
		if len(want) > 0 {
			tests = append(tests, test{f, factNames[bitIndex(f)], want, match})
		}
	}
	add(FieldPath, c.Path, func(fact, want string) bool {
		if want == "*" {
			return fact != ""
		}
		p, _ := newPathPattern(want, PathAuto)
		return p.match(fact)
	})
	add(FieldReferrer, c.Referrer, matchHost)
	add(FieldSource, c.Source, fold)
	add(FieldMedium, c.Medium, fold)
	add(FieldCampaign, c.Campaign, fold)
	add(FieldDevice, c.Device, fold)
	add(FieldCountry, c.Country, fold)
	var deps Fields
	for _, t := range tests {
		deps |= t.field
	}
	if c.Visitor != "" {
		deps |= FieldNew
	}
	b := &builtin{name: "context", deps: Dependencies{Request: deps}, touches: true} // reads no profile
	b.f = func(in *Input, rec *condRecorder) (bool, error) {
		all := true
		for _, t := range tests {
			fact := factValue(&in.Request, t.field)
			ok := false
			for _, w := range t.want {
				if t.match(fact, w) {
					ok = true
					break
				}
			}
			all = all && ok
			if rec != nil {
				actual := "null"
				if fact != "" {
					actual = strconv.Quote(fact)
				}
				want, _ := json.Marshal(t.want)
				rec.fact("request."+t.name, "in", actual, string(want), ok)
			} else if !ok {
				return false, nil
			}
		}
		if c.Visitor != "" {
			ok := in.Request.New == (c.Visitor == "new")
			all = all && ok
			if rec != nil {
				rec.fact("request.new", "=", strconv.FormatBool(in.Request.New), strconv.FormatBool(c.Visitor == "new"), ok)
			}
		}
		return all, nil
	}
	switch {
	case c.Visitor != "" && c.Visitor != "new" && c.Visitor != "returning":
		b.err = fmt.Errorf("unknown visitor %q: want new or returning", c.Visitor)
	case len(tests) == 0 && c.Visitor == "":
		b.err = errors.New("no fact to test")
	}
	for _, p := range c.Path {
		if p == "*" {
			continue
		}
		if _, err := newPathPattern(p, PathAuto); err != nil {
			b.err = err
		}
	}
	for _, p := range c.Referrer {
		if strings.ContainsAny(p, "*?[") {
			if _, err := path.Match(p, ""); err != nil {
				b.err = fmt.Errorf("bad referrer pattern %q: %v", p, err)
			}
		}
	}
	return b
}

// matchHost reports whether the host fact matches want: a host, matching
// itself and its subdomains, or a glob pattern.
func matchHost(fact, want string) bool {
	if fact == "" {
		return false
	}
	if want == "*" {
		return true
	}
	if strings.ContainsAny(want, "*?[") {
		ok, _ := path.Match(strings.ToLower(want), strings.ToLower(fact))
		return ok
	}
	if len(fact) > len(want) && fact[len(fact)-len(want)-1] == '.' {
		fact = fact[len(fact)-len(want):]
	}
	return strings.EqualFold(fact, want)
}

// bitIndex returns the index of the single bit of f.
func bitIndex(f Fields) int {
	for i := range factNames {
		if f == 1<<i {
			return i
		}
	}
	return 0
}

// factValue returns the string fact f of r.
func factValue(r *Facts, f Fields) string {
	switch f {
	case FieldPath:
		return r.Path
	case FieldReferrer:
		return r.Referrer
	case FieldSource:
		return r.Source
	case FieldMedium:
		return r.Medium
	case FieldCampaign:
		return r.Campaign
	case FieldDevice:
		return r.Device
	case FieldCountry:
		return r.Country
	}
	return ""
}

func parseContext(l *loader, v *condJSON) Rule {
	keys := []string{"path", "referrer", "utmSource", "utmMedium", "utmCampaign", "device", "country", "visitor"}
	a := l.args("context", v, keys...)
	c := Context{
		Path: a.strs("path"), Referrer: a.strs("referrer"),
		Source: a.strs("utmSource"), Medium: a.strs("utmMedium"), Campaign: a.strs("utmCampaign"),
		Device: a.strs("device"), Country: a.strs("country"),
		Visitor: a.oneOf("visitor", "", "new", "returning"),
	}
	if a.ok && len(v.Members) == 0 && v.Kind == condObj {
		a.fail("context needs at least one of %s", strings.Join(keys, ", "))
	}
	for i, p := range c.Path {
		if p == "*" {
			continue
		}
		if _, err := newPathPattern(p, PathAuto); err != nil {
			if pv := a.get("path"); pv.Kind == condArr {
				l.push("path")
				a.bad(strconv.Itoa(i), pv.Elems[i], "%v", err)
				l.pop()
			} else {
				a.bad("path", pv, "%v", err)
			}
		}
	}
	return a.done(Contextual(c))
}

func parseTrait(l *loader, v *condJSON) Rule {
	a := l.args("trait", v, "path", "is")
	a.require("path")
	p := a.str("path")
	is := a.get("is")
	if is == nil {
		is = &condJSON{Kind: condObj, Members: []condMember{{Key: "$exists", Val: &condJSON{Kind: condBool, Bool: true}}}}
	}
	l.push("is")
	l.c.usesTime = false
	node, ops := l.c.fieldValue(is)
	usesTime := l.c.usesTime
	l.pop()
	if p == "" && a.ok && a.has("path") {
		a.bad("path", a.get("path"), "path is empty")
	}
	return a.done(traitRule(p, is, node, ops, usesTime))
}
