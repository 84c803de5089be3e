package core

import (
	"context"
	"errors"
	"strings"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// ErrStoreUnavailable is returned by LookupStored when the profile could not
// be read from the store.
var ErrStoreUnavailable = errors.New("the store failed to load the profile")

// LookupStored binds v, which is zero, to the stored profile id (a visitor
// id, or a user's profile id as store.UserProfileID makes) outside a request,
// following the profiles it was merged into, and classifies it from the
// profile alone (no request facts). It returns store.ErrNotFound when no
// profile is stored or pending under id, or it was erased, and an error
// wrapping ErrStoreUnavailable when the store failed: v is then left
// untracked. A stored profile is that of a visitor who consented to being
// tracked (withdrawing consent erases it), so v gets ConsentFull.
func (p *Core) LookupStored(ctx context.Context, v *Visit, id string) error {
	if err := store.ValidateID(id); err != nil {
		return err
	}
	v.Now = p.cfg.Now()
	b := &v.b0
	b.pid = id
	if user, ok := strings.CutPrefix(id, store.UserPrefix); ok {
		b.user = user
	} else {
		b.id = id
	}
	b.st = p.state(ctx, id)
	for hops := 0; hops < maxHops; hops++ {
		into := p.mergedInto(b.pid, b.st)
		if into == "" {
			break
		}
		b.pid, b.user = into, strings.TrimPrefix(into, store.UserPrefix)
		b.st = p.state(ctx, into)
	}
	if p.forgotten.Profile(id) || p.forgotten.Profile(b.pid) {
		return store.ErrNotFound
	}
	mu := p.lock(b.pid)
	mu.Lock()
	defer mu.Unlock()
	if b.st.partial {
		return ErrStoreUnavailable
	}
	prof := p.profile(b.st)
	if prof.Version == 0 && prof.Recent.Len() == 0 {
		return store.ErrNotFound
	}
	v.Tracked, v.Consent = true, ConsentFull
	v.b.Store(b)
	if p.cfg.Engine != nil {
		in := &rules.Input{Profile: prof, Now: v.Now,
			NewVisit: !prof.LastSeen.IsZero() && v.Now.Sub(prof.LastSeen) > p.cfg.VisitTimeout}
		v.Segments = p.cfg.Engine.Classify(in)
	}
	return nil
}
