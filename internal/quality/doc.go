// Package quality is the yardstick of package rules/assoc: data sets of
// visitors' baskets, exact counts by brute force to check a model's rules
// against, and an offline protocol that scores recommendations against
// two baselines. It uses only assoc's public API, so that it measures any
// implementation of the model. assoc's tests (quality_test.go) and the
// command examples/baskets use it, which is why it is internal to the
// module rather than to rules/assoc.
//
// # Data sets
//
// A [Dataset] is a list of baskets, each the set of items one visitor
// bought. [LoadARFF] reads Weka's market-basket files, such as
// supermarket.arff (4,627 baskets of a New Zealand supermarket's
// departments: dense, 18.5 items per basket); [FindSupermarket] looks for
// it where tests and the CI put it. Three generators make synthetic data,
// deterministic from a seed:
//
//   - [Dense]: dense baskets (18 items on average, heavy buyers past 100)
//     over 1,220 items, with a flat band of 300 mid-popularity items, a long
//     tail, and planted rules of known strength ([Planted]);
//   - [Tastes]: visitors who each belong to one or two of 60 taste groups
//     and buy mostly from their groups: data with structure that
//     co-occurrence finds and popularity does not;
//   - [Shop]: the sparse shop of assoc's benchmark (10,000 items in themes
//     of 20, one to eight items per order, returning buyers).
//
// # Exactness
//
// [BruteForce] counts baskets holding any set of items exactly, by
// intersecting the sorted lists of the baskets of each item. [CheckRules] compares the rules of a model learnt
// without thresholds with those counts: every consequent that occurs with
// an antecedent must be there, with the exact count, support, confidence
// and lift.
//
// # Recommendations
//
// [Evaluate] trains a [Recommender] on one part of a data set ([Split])
// and, for each basket of the other part, hides items and asks for k
// recommendations from the rest: hit rate@k (one item hidden) and
// recall@k (half the items hidden). [Popularity] and [ItemKNN] are the
// baselines a rule model must beat; [Tailor] wraps an assoc.Model.
package quality
