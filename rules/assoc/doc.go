// Package assoc is tailor's group leverage: it learns, online, which items
// go together in visitors' baskets, as association rules {X} ⇒ Z and
// {X, Y} ⇒ Z, and recommends items with the rule that explains each one
// ("bought together with moneyball"). It also computes per-visitor
// predictions from a profile: usual purchase months, the next purchase, the
// best hour and day to contact, and the risk of churn.
//
// # Baskets are visitors, not orders
//
// A basket is the set of items of one visitor, accumulated over all the
// visitor's orders: when a visitor who bought P buys N, the basket becomes
// P ∪ N. So {moneyball, red-sox-banner} ⇒ red-sox-potato-head reads "of the
// visitors who bought Moneyball and a Red Sox banner, 80% also bought the
// Potato Head", whether they bought them in one order or three, which is
// what a marketer asks. Every count is a number of visitors: an item bought
// twice by one visitor counts once.
//
// Views and cart adds join the basket with a lower weight (Config.ViewWeight,
// Config.CartWeight; a purchase weighs 1), and an item keeps the strongest
// signal it got: viewed then bought counts as bought. Counts are weighted
// the way fuzzy association rules are: an item counts its weight, a pair of
// items the smaller of their two weights, a triple the smallest of three,
// and a basket its largest weight. With purchases only, every weight is 1
// and the counts are plain numbers of visitors.
//
// Each learning step moves the counts by exactly the difference it makes to
// the visitor's basket, so the counts depend only on each visitor's final
// basket, not on how it was split into steps: learning a visitor's orders
// one by one with LearnEvent, and learning the visitor's whole profile once
// with LearnProfile, give the same counts (up to the bounds below); weights
// are multiples of 1/1024, so that the sums are exact in any order. For
// that, each step must be given the visitor's basket before it: LearnEvent
// takes it from the profile before the event, Learn from the caller.
// Learning is idempotent: an event whose items the basket already holds
// (a retried event, a second view) changes nothing.
//
// The alternative, one basket per order (a purchase event's Items), would
// answer another question ("in the same cart"), and a rebuild could only
// find the orders still in a profile's Recent ring, whereas Purchases.Items
// keeps every item a visitor bought (up to store.Limits.Items).
//
// A profile's basket ([Model.BasketOf]) is its Purchases.Items (bought),
// the items of the cart events still in its Recent ring (carted), and its
// Views (viewed). Cart adds that left the ring are forgotten.
//
// # Rules
//
// For a rule If ⇒ Then over all baskets:
//
//   - Count is the weighted number of baskets holding If and Then;
//   - Support is Count divided by the weighted number of baskets;
//   - Confidence is Count divided by the weighted number of baskets holding
//     If;
//   - Lift is Confidence divided by the share of baskets holding Then.
//
// [Model.Rules] lists the rules of an antecedent that pass MinSupport,
// MinConfidence and MinLift. [Model.Likelihood] gives the best rule that
// predicts an item from a visitor's items, for segments such as "likely to
// buy Z" (best confidence at least c). [Model.Recommend] ranks items by the
// confidence of their best rule, then its lift, never offers an item the
// visitor bought, and completes the list with the items most popular in the
// visitor's top interest category, then overall. The model learns item
// categories from the Category of purchase, cart and page events.
//
// # Bounds
//
// Memory is bounded by the Config, whatever the traffic:
//
//   - at most MaxItems items are counted. Past it, every item whose count is
//     at most the first quartile of item counts is dropped, with every count
//     that refers to it (so at least a quarter of the items, and all the
//     items seen once when they are most of them);
//   - each item, and each pair of items, keeps the counts of at most TopK
//     consequents, in a Space-Saving summary: a consequent new to a full
//     list replaces the one with the smallest count and inherits that count
//     as an error bound. Rules use count minus error, a lower bound of the
//     true count; the consequents that matter (those with the largest counts)
//     stay. Without replacements the counts are exact;
//   - at most MaxPairs pairs of items are counted as antecedents. Past it,
//     every pair whose count is at most the first quartile is dropped: rare
//     pairs go first. A pair seen again later starts from zero;
//   - only the first MaxBasket items of a visitor's basket (by weight, then
//     by id) are combined into pairs and triples, which bounds the work per
//     step; further items count for popularity only;
//   - the popularity lists hold the top 100 items overall and per category.
//
// A model therefore takes about 16 bytes per consequent (at most
// (MaxItems + MaxPairs) × TopK of them), plus about 100 bytes per item and
// 55 to 110 bytes per pair: a hash table slot of 40 bytes, in a table that
// doubles whenever it is 3/4 full, up to the size MaxPairs needs, and never
// shrinks. [Model.Stats] reports sizes, an estimate of the bytes, and how
// many items, pairs and consequents the bounds dropped. With 10,000 items
// and a million baskets, the default bounds keep the model near 72 MB of
// heap (see BenchmarkRecommend). Pruning a full table of pairs takes a few
// milliseconds under the write lock for the default MaxPairs: a linear
// selection of the quartile, and one pass over the table.
//
// Counts learnt after a drop are estimates: a count never exceeds the true
// one, but a pair's consequents may then exceed the pair's own count, and
// confidences are capped at 1.
//
// # Restarts and several instances
//
// A model lives in memory. At start-up, rebuild it from the profiles of
// the store with [Model.Rebuild] (it needs a store that implements
// store.Ranger), or load a snapshot written by [Model.WriteTo] with
// [Model.ReadFrom], which is faster for large sites. Snapshots are
// canonical: equal counts give equal bytes.
//
// When a site runs on several instances, each one keeps its own model: it
// learns online from the events it records (LearnEvent), and rebuilds from
// the shared store periodically (every hour, say). As counts are a function
// of the visitors' final baskets only, every rebuild from the same store
// gives every instance the same counts; between two rebuilds, the instances
// differ only by the events each learnt online since, which the next
// rebuild includes for all. Pruning depends on the order profiles arrive
// in, so rules over items or pairs close to the pruning thresholds may
// differ between instances; rules well above them do not.
//
// The periodic rebuild also applies what online learning cannot see:
// profiles merged on identify count as one visitor again, and the baskets of
// erased or expired profiles leave the counts. The model keeps no
// per-visitor data, only sums over visitors.
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
