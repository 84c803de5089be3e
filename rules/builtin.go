package rules

// Built-in rules over the profile. Each is false for a visitor without a
// profile.

// Purchased matches visitors with at least min purchases.
func Purchased(min int) Rule {
	return profileRule(func(in *Input) bool { return in.Profile.Purchases.Count >= min })
}

// Visits matches visitors on their min-th visit or later.
func Visits(min int) Rule {
	return profileRule(func(in *Input) bool { return in.Profile.Visits >= min })
}

// EventCount matches visitors with at least min events named name ("page",
// "purchase", any track event's name).
func EventCount(name string, min int) Rule {
	return profileRule(func(in *Input) bool { return in.Profile.Counts[name] >= min })
}

// CategoryViews matches visitors who viewed pages of category at least min
// times.
func CategoryViews(category string, min int) Rule {
	return profileRule(func(in *Input) bool { return in.Profile.Categories[category] >= min })
}

// And matches when every rule matches (and when there are none).
func And(rs ...Rule) Rule {
	return RuleFunc(func(in *Input) (bool, error) {
		for _, r := range rs {
			if ok, err := r.Match(in); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	})
}

// Or matches when any rule matches.
func Or(rs ...Rule) Rule {
	return RuleFunc(func(in *Input) (bool, error) {
		var first error
		for _, r := range rs {
			ok, err := r.Match(in)
			if ok && err == nil {
				return true, nil
			}
			if first == nil {
				first = err
			}
		}
		return false, first
	})
}

// Not matches when r does not. An error in r stays an error.
func Not(r Rule) Rule {
	return RuleFunc(func(in *Input) (bool, error) {
		ok, err := r.Match(in)
		return !ok && err == nil, err
	})
}

func profileRule(f func(*Input) bool) Rule {
	return RuleFunc(func(in *Input) (bool, error) {
		return in.Profile != nil && f(in), nil
	})
}
