package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// Weather tells the temperature in a city. A real site would call a
// weather service, with a cache; this example owns a stub.
type Weather interface {
	Temperature(city string) (celsius float64, ok bool)
}

// stubWeather is a Weather with fixed temperatures that tests can change.
type stubWeather struct {
	mu    sync.RWMutex
	temps map[string]float64 // by lower-case city name
}

func newStubWeather() *stubWeather {
	return &stubWeather{temps: map[string]float64{
		"oslo": -3, "helsinki": -6, "berlin": 4, "london": 9, "paris": 12,
		"lisbon": 19, "madrid": 24, "athens": 27, "cairo": 31,
	}}
}

func (w *stubWeather) Temperature(city string) (float64, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	t, ok := w.temps[strings.ToLower(city)]
	return t, ok
}

func (w *stubWeather) set(city string, celsius float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.temps[strings.ToLower(city)] = celsius
}

// capitals gives a city for visitors who did not tell theirs, from the
// country of the request.
var capitals = map[string]string{
	"NO": "Oslo", "FI": "Helsinki", "DE": "Berlin", "GB": "London", "FR": "Paris",
	"PT": "Lisbon", "ES": "Madrid", "GR": "Athens", "EG": "Cairo",
}

// temperatureArgs are the arguments of the "temperature" plugin in a
// segments file:
//
//	{"temperature": {"below": 5}}
//	{"temperature": {"above": 22, "cityTrait": "address.city", "refresh": "10m"}}
type temperatureArgs struct {
	// Below and Above bound the temperature in °C; one of them is given.
	Below *float64 `json:"below"`
	Above *float64 `json:"above"`
	// CityTrait is the trait holding the visitor's city; default "city".
	CityTrait string `json:"cityTrait"`
	// Refresh is how often the weather changes, at most; default "15m".
	Refresh string `json:"refresh"`
}

// temperatureRule matches visitors whose city is colder than Below or
// warmer than Above: their city trait, or else the capital of the
// request's country.
type temperatureRule struct {
	w       Weather
	args    temperatureArgs
	refresh time.Duration
}

// temperatureFactory makes the "temperature" plugin over w.
func temperatureFactory(w Weather) rules.Factory {
	return func(raw json.RawMessage) (rules.Rule, error) {
		var a temperatureArgs
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return nil, err
		}
		if (a.Below == nil) == (a.Above == nil) {
			return nil, errors.New(`want one of "below" and "above", in °C`)
		}
		if a.CityTrait == "" {
			a.CityTrait = "city"
		}
		r := &temperatureRule{w: w, args: a, refresh: 15 * time.Minute}
		if a.Refresh != "" {
			d, err := time.ParseDuration(a.Refresh)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("refresh: want a positive duration such as \"15m\", not %q", a.Refresh)
			}
			r.refresh = d
		}
		return r, nil
	}
}

// city returns the visitor's city and where it comes from.
func (r *temperatureRule) city(in *rules.Input) (city, from string) {
	if t := in.Trait(r.args.CityTrait); t.Type == gjson.String && t.Str != "" {
		return t.Str, "traits." + r.args.CityTrait
	}
	if c, ok := capitals[in.Request.Country]; ok {
		return c, "request.country"
	}
	return "", ""
}

// Match reports whether the temperature in the visitor's city is below or
// above the bound. A visitor whose city is unknown does not match.
func (r *temperatureRule) Match(in *rules.Input) (bool, error) {
	ok, _ := r.eval(in)
	return ok, nil
}

func (r *temperatureRule) eval(in *rules.Input) (bool, rules.Clause) {
	c := rules.Clause{Rule: "temperature", Op: "<", Actual: "null"}
	if r.args.Above != nil {
		c.Op, c.Expected = ">", strconv.FormatFloat(*r.args.Above, 'g', -1, 64)
	} else {
		c.Expected = strconv.FormatFloat(*r.args.Below, 'g', -1, 64)
	}
	city, from := r.city(in)
	c.Path = "temperature[" + city + "] (city from " + from + ")"
	if city == "" {
		c.Path = "temperature (no city)"
		return false, c
	}
	// The weather may change at the next refresh.
	in.ChangesAt(in.Now.Add(r.refresh))
	t, ok := r.w.Temperature(city)
	if !ok {
		return false, c
	}
	c.Actual = strconv.FormatFloat(t, 'g', -1, 64)
	if r.args.Above != nil {
		c.Result = t > *r.args.Above
	} else {
		c.Result = t < *r.args.Below
	}
	return c.Result, c
}

// Dependencies tells the engine that the rule reads the request's country
// and changes with time, so that results are not kept longer than the
// weather.
func (r *temperatureRule) Dependencies() rules.Dependencies {
	return rules.Dependencies{Request: rules.FieldCountry, Time: true}
}

// Touches tells the engine that of the profile the rule reads the traits
// only (the city): a page view does not make the engine ask it again.
func (r *temperatureRule) Touches() store.Touch { return store.TouchTraits }

// Explain says which city and which temperature the rule looked at.
func (r *temperatureRule) Explain(in *rules.Input) (bool, []rules.Clause, error) {
	ok, c := r.eval(in)
	return ok, []rules.Clause{c}, nil
}
