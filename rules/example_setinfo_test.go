package rules_test

import (
	"encoding/json"
	"fmt"

	"github.com/tailorhq/tailor/rules"
)

// A dashboard shows what runs: the text a set was parsed from, also when
// it was built into the program, and the plugins of the set's own
// registry.
func ExampleSet_Plugins() {
	reg := rules.NewRegistry()
	reg.Register("coldWeather", func(json.RawMessage) (rules.Rule, error) { return rules.Visits(1), nil })
	reg.Register("hotWeather", func(json.RawMessage) (rules.Rule, error) { return rules.Visits(1), nil })
	set, err := rules.Parse([]byte(`[{"name": "cold", "rule": {"coldWeather": {"below": 5}}}]`),
		rules.Plugins(reg), rules.Filename("embedded/segments.json"))
	if err != nil {
		panic(err)
	}
	fmt.Println("used:", set.Plugins())
	fmt.Println("registered:", set.RegisteredPlugins())
	fmt.Printf("%s: %s\n", set.Source(), set.Text())
	// Output:
	// used: [coldWeather]
	// registered: [coldWeather hotWeather]
	// embedded/segments.json: [{"name": "cold", "rule": {"coldWeather": {"below": 5}}}]
}
