package store

import (
	"context"
	"slices"
	"strings"
	"time"
)

// A Purchase is an entry of a Journal: an order applied to a profile, with
// what the profile had bought before it, which is what a model of "people
// who bought X and Y also bought Z" learns from (rules/assoc).
type Purchase struct {
	// ID is the profile's id.
	ID   string
	Time time.Time
	// Items are the distinct items of the order, by id, with their
	// category if the event gave one; Price and Quantity are not kept.
	// Those the profile did not keep, past Limits.Items, are left out.
	Items []Item
	// Prior are the distinct items the profile had bought before, sorted
	// (those of Profile.Purchases.Items, bounded by Limits.Items).
	Prior []string
}

// Journal is the optional ability to keep a journal of the purchases
// applied to profiles, written in the same transaction as the profile (so
// that each purchase applied is journaled exactly once, and a purchase
// not applied, as a repeated event, never), for models that learn from
// every instance's purchases without reading profiles.
//
//   - Purchases returns up to max purchases journaled after cursor (""
//     means from the oldest kept), and the cursor that follows them. A
//     purchase is returned once by a walk of cursors: a purchase committed
//     after the walk passed a cursor is returned by a later call, never
//     skipped. Cursors are strings the store makes and may be kept (in a
//     snapshot of a model, in a Document) to resume, also by another
//     process. With no new purchase, the cursor is returned unchanged.
//   - TrimPurchases forgets the purchases journaled before t (by the
//     store's clock), as a model's snapshot made after them holds what they
//     taught. A cursor from before the trim still works: the walk resumes
//     at the oldest purchase kept.
//
// A purchase is the profile's data: Store.Delete (erasure) and
// Expirer.Expire (retention) remove from the journal every purchase of
// the profiles they remove, as part of the removal, so that no walk
// begun after them returns one (how atomically each store does it is in
// its package documentation). A model that learnt such a purchase before
// keeps what it learnt (rules/assoc: counts of items bought together,
// which name no profile). Nothing else removes purchases but
// TrimPurchases: the middleware trims those journaled before
// Config.JournalRetention (30 days by default) in its hourly retention
// job, so that the journal of a site that reads none stays bounded, and
// rules/assoc's Follower trims what each snapshot holds, every few
// minutes.
type Journal interface {
	Purchases(ctx context.Context, cursor string, max int) ([]Purchase, string, error)
	TrimPurchases(ctx context.Context, before time.Time) error
}

// journalPurchase notes e, a purchase about to be applied, for
// TakePurchases: the items that Purchases.Items will hold, which are not
// those past lim.Items (see count), so that a journal's baskets stay the
// profiles' own.
func (p *Profile) journalPurchase(lim Limits, e *Event) {
	var items []Item
	held := len(p.Purchases.Items)
	for _, it := range e.Items {
		if it.ID == "" || slices.ContainsFunc(items, func(x Item) bool { return x.ID == it.ID }) {
			continue
		}
		if _, ok := p.Purchases.Items[it.ID]; !ok {
			if held >= lim.Items {
				continue
			}
			held++
		}
		items = append(items, Item{ID: it.ID, Category: it.Category})
	}
	if len(items) == 0 {
		return
	}
	slices.SortFunc(items, func(a, b Item) int { return strings.Compare(a.ID, b.ID) })
	var prior []string
	for id, n := range p.Purchases.Items {
		if n > 0 {
			prior = append(prior, id)
		}
	}
	slices.Sort(prior)
	p.journal = append(p.journal, Purchase{ID: p.ID, Time: e.Time, Items: items, Prior: prior})
}

// TakePurchases returns the purchases applied to this value since it was
// made, decoded or last asked, and forgets them: a store that keeps a
// Journal calls it after folding the events it writes.
func (p *Profile) TakePurchases() []Purchase {
	j := p.journal
	p.journal = nil
	return j
}
