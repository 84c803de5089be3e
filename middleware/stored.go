package middleware

import (
	"context"
	"errors"
	"fmt"

	"github.com/tailorhq/tailor/middleware/internal/core"
)

// StoredVisitor returns the visitor of a stored profile, for code that runs
// outside a request (a worker, another service): id is a visitor id (as
// Visitor.ID returns) or a user's profile id, "user:" followed by the user id
// (store.UserProfileID). A visitor who identified as a user is the user's
// profile, as on their requests.
//
// The visitor is classified from their profile alone: rules that read request
// facts see none. What is recorded through it (Track, Purchase, Record) goes
// to the profile as from a request, and middleware/slots picks for it and
// records exposures as for a page. Its ID is the visitor id, or "" for a
// user's profile (so slot experiments, which assign by visitor id, leave it
// out); its Consent is ConsentFull, since only the profiles of visitors who
// consented are kept.
//
// It returns an error wrapping store.ErrNotFound when nothing is stored (or
// pending on this instance) under id, or the profile was erased, and one
// wrapping store.ErrInvalidID for a malformed id. It reads through the
// profile cache, so it may miss another instance's changes for up to
// Config.Cache.Freshness.
func (p *Personalizer) StoredVisitor(ctx context.Context, id string) (*Visitor, error) {
	v := &Visitor{p: p}
	if err := p.core.LookupStored(ctx, &v.v, id); err != nil {
		if errors.Is(err, core.ErrStoreUnavailable) {
			return nil, fmt.Errorf("tailor: StoredVisitor: %w", err)
		}
		return nil, fmt.Errorf("tailor: StoredVisitor: %w", err)
	}
	return v, nil
}
