package main

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// Category is a product category, with the number of products in it.
type Category struct {
	Slug  string
	Name  string
	Count int
}

// Product is one item for sale.
type Product struct {
	ID          int
	Name        string
	Category    string // Category.Slug
	PriceCents  int
	Description string
}

// Price formats the price the way every engine prints it.
func (p Product) Price() string {
	return "$" + strconv.Itoa(p.PriceCents/100) + "." + twoDigits(p.PriceCents%100)
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// Review is a customer's review of a product.
type Review struct {
	Author string
	Stars  int
	Text   string
}

// User is a signed-in customer; fragments that differ per user vary on ID.
type User struct {
	ID   int
	Name string
}

// hostileName is a product name that must come out escaped on every page of
// every engine, cached or not: fragments store rendered, escaped HTML, so a
// mistake would be served to every visitor until the fragment expires.
const hostileName = `Mug <script>alert("pwned")</script> & Co`

var (
	categories = []Category{
		{Slug: "kitchen", Name: "Kitchen"},
		{Slug: "garden", Name: "Garden"},
		{Slug: "books", Name: "Books"},
	}
	products = []Product{
		{ID: 1, Name: "Cast-iron skillet", Category: "kitchen", PriceCents: 3499, Description: "Heavy, black and older than you."},
		{ID: 2, Name: "Chef's knife", Category: "kitchen", PriceCents: 5900, Description: "Sharp enough for tomatoes."},
		{ID: 3, Name: hostileName, Category: "kitchen", PriceCents: 1250, Description: "Its name tries to run a script; the page must print it as text."},
		{ID: 4, Name: "Garden hose", Category: "garden", PriceCents: 2999, Description: "Twenty metres of green."},
		{ID: 5, Name: "Watering can", Category: "garden", PriceCents: 1599, Description: "Holds five litres."},
		{ID: 6, Name: "The Go Programming Language", Category: "books", PriceCents: 3995, Description: "Donovan and Kernighan."},
		{ID: 7, Name: "Caching for Beginners", Category: "books", PriceCents: 1999, Description: "Short, and out of date the moment you read it."},
	}
	reviews = map[int][]Review{
		1: {{"ann", 5, "Seasoned it once, cooked with it ever since."}, {"bob", 4, "Heavy."}},
		2: {{"carol", 5, "Went through a pumpkin."}},
		3: {{"mallory", 1, "<b>bold</b> claims, as text."}},
		6: {{"dave", 5, "The gopher book."}},
	}
	users = []User{{ID: 1, Name: "alice"}, {ID: 2, Name: "bob"}}
)

// Shop is the demo's data source: a fixed catalogue behind queries that
// each sleep for Delay, standing in for a database far enough away that
// caching the fragments rendered from it is worth it. It is safe for
// concurrent use.
type Shop struct {
	// Delay is how long every query takes.
	Delay time.Duration

	queries atomic.Uint64
}

// Queries returns the number of queries run so far: on a warm page it
// stays put, which is the whole point of caching fragments.
func (s *Shop) Queries() uint64 { return s.queries.Load() }

// query accounts for one query and waits for its Delay, or until ctx ends
// (the client went away; the data is in memory anyway).
func (s *Shop) query(ctx context.Context) {
	s.queries.Add(1)
	if s.Delay <= 0 {
		return
	}
	t := time.NewTimer(s.Delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Categories returns every category with its product count.
func (s *Shop) Categories(ctx context.Context) []Category {
	s.query(ctx)
	out := slices.Clone(categories)
	for i := range out {
		for _, p := range products {
			if p.Category == out[i].Slug {
				out[i].Count++
			}
		}
	}
	return out
}

// Category returns the category with the given slug; it is an index
// lookup, so it does not count as a slow query.
func (s *Shop) Category(slug string) (Category, bool) {
	for _, c := range categories {
		if c.Slug == slug {
			return c, true
		}
	}
	return Category{}, false
}

// CategorySlugs returns the slug of every category; it is an index
// lookup, so it does not count as a slow query.
func (s *Shop) CategorySlugs() []string {
	out := make([]string, len(categories))
	for i, c := range categories {
		out[i] = c.Slug
	}
	return out
}

// Products returns the products in the category with the given slug, or
// every product for "".
func (s *Shop) Products(ctx context.Context, slug string) []Product {
	s.query(ctx)
	var out []Product
	for _, p := range products {
		if slug == "" || p.Category == slug {
			out = append(out, p)
		}
	}
	return out
}

// Exists reports whether a product with the given ID exists; handlers call
// it to answer 404 without running a slow query.
func (s *Shop) Exists(id int) bool {
	_, ok := findProduct(id)
	return ok
}

// Product returns the product with the given ID, or the zero Product.
func (s *Shop) Product(ctx context.Context, id int) Product {
	s.query(ctx)
	p, _ := findProduct(id)
	return p
}

func findProduct(id int) (Product, bool) {
	for _, p := range products {
		if p.ID == id {
			return p, true
		}
	}
	return Product{}, false
}

// Reviews returns the reviews of the product with the given ID.
func (s *Shop) Reviews(ctx context.Context, id int) []Review {
	s.query(ctx)
	return slices.Clone(reviews[id])
}

// Recommended returns the products recommended to the user with the given
// ID: a different selection for each user, so that the fragment showing it
// has to vary on the user.
func (s *Shop) Recommended(ctx context.Context, userID int) []Product {
	s.query(ctx)
	var out []Product
	for _, p := range products {
		if (p.ID+userID)%3 == 0 {
			out = append(out, p)
		}
	}
	return out
}

// User returns the user with the given name.
func (s *Shop) User(name string) (User, bool) {
	for _, u := range users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// Users returns every user the demo can sign in as.
func (s *Shop) Users() []User { return slices.Clone(users) }
