package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tailorhq/tailor/middleware/internal/core"
	"github.com/tailorhq/tailor/middleware/internal/tracking"
	"github.com/tailorhq/tailor/store"
)

// Identify tells that the visitor of r is the user userID (an email, an
// account id: at most store.MaxUserIDLength bytes), for instance once they
// signed in. traits (nil, or values that encode as JSON) are merged into
// the user's traits, newest winning per key.
//
// The visitor's anonymous profile is merged into the user's profile, which
// every browser the user signs in with shares, along with the events that
// servers send about the user (TrackUser, IdentifyUser, the collection
// endpoint); the visitor's cookie names the user from the response on.
// Call it from a handler wrapped by Handler before the response is written,
// or from any handler with w and r (the cookie is set on w). A visitor who
// is already identified as another user gets a new visitor id: nothing of
// one user's history goes to another's.
//
// Identify writes to the store at once: it returns an error when the
// store fails, and the visitor's cookie stays as it was; the merge is then
// written again in the background, and completed once the store answers
// (a profile is merged into a user's once, however often it is sent), and
// the visitor's next request after that is bound to the user. While the
// store is known to be failing (a read or write failed within the last
// WriteBehind.FlushInterval), Identify waits for it no longer than
// Config.LoadTimeout: past that it queues the merge and returns
// ErrMergeQueued. The identify event (the traits) is recorded for the user
// in every case. It has no effect on visitors who are not
// tracked (crawlers, no consent).
func (p *Personalizer) Identify(w http.ResponseWriter, r *http.Request, userID string, traits map[string]any) error {
	to, err := store.UserProfileID(userID)
	if err != nil {
		return fmt.Errorf("tailor: Identify: %w", err)
	}
	tr, err := traitsJSON(traits)
	if err != nil {
		return fmt.Errorf("tailor: Identify %q: traits: %w", userID, err)
	}
	v := FromContext(r.Context())
	standalone := v == nil
	if standalone {
		v = p.lookup(r, true)
	}
	if !v.Tracked() {
		return nil
	}
	now := p.cfg.Now()
	err = p.core.IdentifyVisitor(r.Context(), &v.v, userID, to, now)
	// The user's traits are the user's whether or not the merge could be
	// written now. recordTo gives the event its id under the profile's
	// lock: an id taken before it could lose to a concurrent event's
	// higher one, and the store would skip it as applied already.
	p.core.RecordTo(to, store.Event{Type: store.TypeIdentify, Time: now, UserID: userID, Traits: tr})
	if err != nil {
		return err
	}
	if standalone {
		// The cookie is re-issued: a first page view that it carries goes
		// on in it, to be recorded when the visitor comes back.
		if c, err := p.cookies.Cookie(v.v.CookieID(), v.v.First, r, now); err == nil {
			http.SetCookie(w, c)
		}
	}
	return nil
}

// ErrMergeQueued is returned (wrapped) by Identify, Alias and the
// collection endpoint's identify and alias calls when the store failed or
// is failing: the merge is queued and written once the store answers, and
// the visitor's next request after that is bound to the user.
var ErrMergeQueued = core.ErrMergeQueued

// Alias merges the profile previousID into the profile of the user
// userID, as Segment's alias call does: previousID is a visitor id (as
// Visitor.ID returns) or the user's former user id. Later events for
// previousID reach userID's profile.
func (p *Personalizer) Alias(ctx context.Context, previousID, userID string) error {
	if _, err := store.UserProfileID(userID); err != nil {
		return fmt.Errorf("tailor: Alias: userID: %w", err)
	}
	from, err := core.PreviousProfileID(previousID)
	if err != nil {
		return fmt.Errorf("tailor: Alias: previousID: %w", err)
	}
	if err := p.core.Link(ctx, []core.LinkReq{{From: from, UserID: userID, At: p.cfg.Now()}}); err != nil {
		return fmt.Errorf("tailor: Alias %q to %q: %w", previousID, userID, err)
	}
	return nil
}

// IdentifyUser records traits about the user userID from a server (a CRM
// stage, a plan): they reach the segments of every browser the user
// identified with, on its next request (on other instances, within
// Config.Cache.Freshness of the next flush).
func (p *Personalizer) IdentifyUser(ctx context.Context, userID string, traits map[string]any) error {
	to, err := store.UserProfileID(userID)
	if err != nil {
		return fmt.Errorf("tailor: IdentifyUser: %w", err)
	}
	tr, err := traitsJSON(traits)
	if err != nil {
		return fmt.Errorf("tailor: IdentifyUser %q: traits: %w", userID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.core.RecordTo(to, store.Event{Type: store.TypeIdentify, Time: p.cfg.Now(), UserID: userID, Traits: tr})
	return nil
}

// TrackUser records an action of the user userID that a server saw (an
// email opened, a lead qualified), with properties as for Track. It
// reaches the segments of every browser the user identified with, on its
// next request.
func (p *Personalizer) TrackUser(ctx context.Context, userID, event string, props any) error {
	to, err := store.UserProfileID(userID)
	if err != nil {
		return fmt.Errorf("tailor: TrackUser: %w", err)
	}
	ev, err := trackEvent(event, props)
	if err != nil {
		return fmt.Errorf("tailor: TrackUser %q: %w", userID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ev.Time = p.cfg.Now()
	p.core.RecordTo(to, ev)
	return nil
}

// lookup identifies the visitor of r outside Handler: no classification,
// no page view. Without create, a request without a valid cookie gives a
// visitor that is not tracked.
func (p *Personalizer) lookup(r *http.Request, create bool) *Visitor {
	v := &Visitor{p: p}
	if p.beginPreview(r, v) {
		v.previewCookie = nil // no response of ours to carry it
		return v
	}
	p.core.Lookup(r, &v.v, create)
	v.v.Facts.Path = tracking.CutPath(r.URL.Path)
	return v
}

// VisitorOf returns the visitor of r: the one Handler put in r's context,
// or else the one r's cookie names, for handlers that are not wrapped by
// Handler (an API, a webhook receiver). Such a visitor is not classified
// (no segments) and r is not recorded as a page view; a request without a
// valid cookie gives a visitor that is not tracked, whose Track and Page
// do nothing. Record what visitors do through the Visitor, whichever way
// it was found. A request in a preview gives the preview's visitor, which
// is not tracked (see PreviewLink).
func (p *Personalizer) VisitorOf(r *http.Request) *Visitor {
	if v := FromContext(r.Context()); v != nil {
		return v
	}
	return p.lookup(r, false)
}

// trackEvent returns the track event of Segment's name and properties.
func trackEvent(name string, props any) (store.Event, error) {
	if name == "" {
		return store.Event{}, errors.New("empty event name")
	}
	if len(name) > tracking.MaxName {
		return store.Event{}, fmt.Errorf("event name of %d bytes, more than %d", len(name), tracking.MaxName)
	}
	raw, err := propsJSON(props)
	if err != nil {
		return store.Event{}, err
	}
	return tracking.MapTrack(name, raw)
}

// propsJSON encodes properties, which must encode as a JSON object.
func propsJSON(props any) ([]byte, error) {
	switch x := props.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		if x == nil {
			return nil, nil
		}
	}
	b, err := json.Marshal(props)
	if err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		if string(b) == "null" {
			return nil, nil
		}
		return nil, fmt.Errorf("properties: %s is not a JSON object", tracking.Truncate(string(b), 40))
	}
	return b, nil
}

// traitsJSON encodes traits as a JSON object, nil for none.
func traitsJSON(traits map[string]any) (json.RawMessage, error) {
	if len(traits) == 0 {
		return nil, nil
	}
	return json.Marshal(traits)
}
