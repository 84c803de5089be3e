// Package assoc is tailor's group leverage: it learns, online, which items
// go together in visitors' baskets, as association rules {X} ⇒ Z and
// {X, Y} ⇒ Z, and recommends items with the rule that explains each one
// ("bought together with moneyball"). It also computes per-visitor
// predictions from a profile: usual purchase months, the next purchase, the
// best hour and day to contact, and the risk of churn.
//
// # Baskets are visitors, not orders
//
// A basket is the set of items one visitor bought, over all the visitor's
// orders: when a visitor who bought P buys N, the basket becomes P ∪ N. So
// {moneyball, red-sox-banner} ⇒ red-sox-potato-head reads "of the visitors
// who bought Moneyball and a Red Sox banner, 80% also bought the Potato
// Head", whether they bought them in one order or three, which is what a
// marketer asks. Every count is a number of visitors: an item bought twice
// by one visitor counts once.
//
// Only purchases are learnt. Views and cart adds once joined the basket
// with lower weights; a visitor who browses thirty products then made
// hundreds of pairs, most of them noise for "people who bought X and Y
// also bought Z", and cost most of the learning. They still serve as
// antecedents: Recommend offers what was bought with what a visitor viewed.
//
// Learning is idempotent: an order whose items the basket holds already (a
// retried event) changes nothing. Each step must be given the visitor's
// basket before it: LearnEvent takes it from the profile before the event,
// Learn from the caller. The counts depend only on each visitor's final
// basket, not on how it was split into orders: learning a visitor's orders
// one by one, and learning the visitor's whole profile once with
// LearnProfile, give the same counts and the same snapshot.
//
// # Rules
//
// For a rule If ⇒ Then over all baskets:
//
//   - Count is the number of baskets holding If and Then;
//   - Support is Count divided by the number of baskets;
//   - Confidence is Count divided by the number of baskets holding If;
//   - Lift is Confidence divided by the share of baskets holding Then.
//
// [Model.Rules] lists the rules of an antecedent that pass MinSupport,
// MinConfidence and MinLift. [Model.Likelihood] gives the best rule that
// predicts an item from a visitor's items, for segments such as "likely to
// buy Z" (best confidence at least c). [Model.Recommend] adds up, for each
// item, its similarity with every item and pair of items of the visitor
// (item-to-item evidence, as in item-based collaborative filtering, with
// pairs for "X and Y"; see Recommend for the measure), explains each item
// by the rule that contributes most, never offers an item the visitor bought, and
// completes the list with the items most popular in the visitor's top
// interest category, then overall. The model learns item categories from
// the Category of purchase, cart and page events.
//
// # Exact counts
//
// The model keeps the baskets it learnt: the distinct baskets, each with
// the number of visitors who have it, told apart by a 64-bit hash of their
// item ids. From them it keeps, learning step by learning step, the count
// of every item, and of every pair of items that share a basket (the
// co-occurrence matrix, a row per item). The consequents of a pair {X, Y}
// are counted when a query first asks for them, by walking the baskets of
// the rarer of X and Y, then kept up to date by learning while they stay
// in a cache of MaxCache consequents (the least recently used half is
// dropped when it is full; a dropped pair is counted again when asked).
// So every Count, Support, Confidence and Lift equals a direct count over
// the same baskets, whatever their sizes.
//
// That holds while the baskets kept hold at most MaxSample items in all
// and share at most MaxPairs distinct pairs of items: with the defaults,
// 32 million items of baskets and 20 million pairs. Measured with 10,000
// items and a million baskets:
//
//   - a shop's baskets, 1 to 8 items (2.6 on average), as in
//     BenchmarkLearnPurchase: 1.2 million pairs, every count exact, 97 MB
//     of heap, 8 µs of CPU per basket learnt;
//   - a supermarket's, 8 to 40 items (24 on average) over all 10,000
//     items, as in BenchmarkLearnDense: they would share about 50 million
//     pairs, past MaxPairs, so the model samples 1/16 of the baskets
//     (13.4 million pairs): 307 MB, 65 µs per basket.
//
// The memory is about 8 bytes per item of a distinct basket kept, 16 per
// distinct pair, 64 per distinct basket, 8 per consequent in the cache of
// pairs, and a few hundred bytes per item (with the list of its 64 most
// similar items that Recommend keeps for each item it asked about); [Model.Stats] reports the sizes
// and an estimate of the bytes. Raise MaxPairs for exact counts over dense
// baskets of many items: at 16 bytes a pair, 50 million pairs take 800 MB.
//
// # Past the bounds: a sample
//
// When a bound would be passed, the model keeps only the baskets whose
// hash is below a threshold, which it halves (and again, until the bounds
// hold): a sample of the distinct baskets, of a rate of 1/2, 1/4...
// ([Stats].SampleRate). As the hash is of the basket's items, the sample is
// the same however the baskets were learnt, and a growing basket leaves or
// joins it as its new hash says, so counts over the sample stay exact
// counts of the sampled baskets. The counts of items and of baskets stay
// exact; a rule's Count is its count in the sample scaled by the number of
// baskets over the number sampled, its Confidence the sample's ratio, its
// Lift that confidence over the exact share of the consequent.
//
// With a sample of rate r, and baskets that rarely repeat exactly, a Count
// c is off by more than 3·√(c·(1−r)/r) for about 0.3% of rules, and a
// Confidence p of an antecedent of n baskets by more than
// 3·√(p·(1−p)·(1−r)/(r·n)) as rarely: binomial errors, as each distinct
// basket is in the sample or not like a coin toss (TestSampledWithinBound
// checks it against direct counts). Baskets that many visitors share
// exactly are in or out together, which widens the error by the square
// root of their mean multiplicity. Frequent items and pairs keep their
// rules, rare ones may lose them; rules never fall to nothing as counts
// of a summary's evictions did.
//
// Past MaxItems distinct items, every item whose count is at most the
// first quartile of item counts is dropped from the counts and the
// baskets, which keep their hash; an item learnt again after that is
// counted from then on, and stays out of the baskets kept before.
//
// A profile keeps at most store.Limits.Items distinct items bought (500 by
// default) and ignores the next ones. The store's journal leaves those out
// too, so a Follower's baskets stay the profiles'. LearnEvent, which does
// not know the limit, learns every item of an order: past the limit, the
// visitor's basket no longer matches the profile's, and each of the
// visitor's later orders counts as a new visitor's basket.
//
// # Restarts and several instances
//
// A model lives in memory. [Follow] keeps a model up to date with the
// store's journal of purchases (store.Journal) on every instance, and
// starts a new instance from the snapshot that one instance keeps in the
// store: see Follower. Without a journal, rebuild the model from the
// profiles of the store with [Model.Rebuild] (store.Ranger), or load a
// snapshot written by [Model.WriteTo] with [Model.ReadFrom]. A snapshot
// holds the items and the baskets, canonically (equal counts give equal
// bytes); reading it counts the pairs again, about a second per million
// small baskets. Snapshots of the earlier format (version 1, which held
// summaries that cannot be made exact) are refused with ErrSnapshot, and
// Follow learns the journal again instead.
//
// The baskets kept are sets of item ids with a count of visitors, with no
// visitor's id: erasing a visitor does not reach them, and a Rebuild from
// the profiles (which no longer hold the erased ones) does. Profiles
// merged on identify count as one visitor again only after a rebuild.
//
// # Predictions
//
// [Predict] reads one profile. Usual months are those with at least two
// orders, in two different years, and more than twice the orders of an
// average month. The typical gap is the median time between the purchase
// events in the Recent ring, or else (Purchases.Last - Purchases.First) /
// (Purchases.Count - 1). Churn risk treats the visitor's purchases as a
// Poisson process at their own pace: with a prior of 10% that a buyer has
// stopped, after a silence t since the last purchase and a typical gap g
// the risk is
//
//	0.1 / (0.1 + 0.9·exp(-t/g))
//
// that is 10% just after a purchase, 23% after one gap, 45% after two, 69%
// after three and 94% after five. The best hour and weekday to contact are
// those with the most email clicks (weight 3), opens (2) and hours with
// visits (1) in the Recent ring, in the visitor's time zone (trait
// "timezone", an IANA name) when it is known; a neighbouring hour counts
// half. Predictions need no model: they are per visitor, and cheap enough
// to compute per request or per export.
package assoc
