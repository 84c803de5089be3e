package site

import (
	"cmp"
	"slices"
)

// A Product is something the shop sells.
type Product struct {
	ID       string
	Name     string
	Category string
	Price    float64 // in dollars
	Blurb    string
}

// Category is a shelf of the shop.
type Category struct {
	ID   string
	Name string
}

// Categories of the demo shop.
var Categories = []Category{
	{"books", "Books"},
	{"red-sox", "Red Sox gear"},
	{"grateful-dead", "Grateful Dead records"},
	{"watercolours", "Watercolour paints"},
	{"winter", "Winter gear"},
}

// Products of the demo shop, with readable ids.
var Products = []Product{
	{"moneyball", "Moneyball", "books", 16.99, "Michael Lewis on the art of winning an unfair game."},
	{"the-teammates", "The Teammates", "books", 14.50, "David Halberstam on Williams, Doerr, Pesky and DiMaggio."},
	{"watercolour-basics", "Watercolour Basics", "books", 22.00, "Washes, glazes and wet-in-wet, step by step."},
	{"red-sox-banner", "Red Sox banner", "red-sox", 24.00, "Felt pennant for the wall above the couch."},
	{"red-sox-potato-head", "Red Sox Mr. Potato Head", "red-sox", 19.99, "The spud in home whites, cap included."},
	{"red-sox-cap", "Red Sox cap", "red-sox", 29.00, "Navy wool, red B."},
	{"american-beauty", "American Beauty (LP)", "grateful-dead", 27.00, "1970, on 180 g vinyl."},
	{"workingmans-dead", "Workingman's Dead (LP)", "grateful-dead", 27.00, "The other 1970 record."},
	{"europe-72", "Europe '72 (3 LP)", "grateful-dead", 49.00, "Live, all of it."},
	{"mount-hood-watercolours", "Mount Hood watercolour set", "watercolours", 34.00, "Twelve pans of glacier blues and forest greens."},
	{"hawaii-watercolours", "Hawaii watercolour set", "watercolours", 34.00, "Twelve pans of lagoon, lava and plumeria."},
	{"sable-brushes", "Sable brush trio", "watercolours", 41.00, "Rounds 2, 6 and 10."},
	{"wool-beanie", "Wool beanie", "winter", 18.00, "Merino, double knit."},
	{"snowshoes", "Snowshoes", "winter", 129.00, "Aluminium frame, for powder and packed trails."},
	{"thermal-gloves", "Thermal gloves", "winter", 32.00, "Touchscreen fingertips."},
}

var byID = func() map[string]*Product {
	m := make(map[string]*Product, len(Products))
	for i := range Products {
		m[Products[i].ID] = &Products[i]
	}
	return m
}()

// ProductByID returns the product with id, or nil.
func ProductByID(id string) *Product { return byID[id] }

// CategoryName returns the display name of a category id.
func CategoryName(id string) string {
	i := slices.IndexFunc(Categories, func(c Category) bool { return c.ID == id })
	if i < 0 {
		return id
	}
	return Categories[i].Name
}

// InCategory returns the products of a category, by name.
func InCategory(cat string) []Product {
	var out []Product
	for _, p := range Products {
		if p.Category == cat {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Product) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
