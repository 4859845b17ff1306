package main

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/fragment"
)

// Page is what every template of every engine renders. Its fields are the
// facts the handler knows up front; its methods run the shop's slow queries
// when a template calls them, which templates do inside cache blocks, so a
// hit skips the query along with the rendering.
type Page struct {
	Engine       string       // the engine rendering the page: "pongo2", "jet" or "html"
	Engines      []EngineLink // the same page in every engine, for the navigation
	Title        string       // the page title
	Path         string       // the page's URL path and query, where forms return to
	Backend      string       // the CACHE_TYPE the fragments are stored in
	User         User         // the signed-in user
	Users        []User       // the users one can sign in as
	CategorySlug string       // the category the home page lists; "" lists every product
	ProductID    int          // the product the product page shows
	Flash        string       // a notice about the last action, or ""

	ctx   context.Context // the request's: queries stop waiting when it ends
	shop  *Shop
	fc    *fragment.Cache
	start time.Time

	invalidated *atomic.Uint64
}

// EngineLink is one entry of the engine navigation.
type EngineLink struct {
	Name    string // engine name, as in the URL
	Href    string // the current page rendered by that engine
	Current bool   // whether it is the engine rendering this page
}

// Categories runs the slow categories query.
func (p *Page) Categories() []Category { return p.shop.Categories(p.ctx) }

// Category returns the name of the listed category, or "All products".
func (p *Page) Category() string {
	if c, ok := p.shop.Category(p.CategorySlug); ok {
		return c.Name
	}
	return "All products"
}

// Products runs the slow query for the listed category's products.
func (p *Page) Products() []Product { return p.shop.Products(p.ctx, p.CategorySlug) }

// Product runs the slow query for the product page's product.
func (p *Page) Product() Product { return p.shop.Product(p.ctx, p.ProductID) }

// Reviews runs the slow query for the product page's reviews.
func (p *Page) Reviews() []Review { return p.shop.Reviews(p.ctx, p.ProductID) }

// Recommended runs the slow query for the signed-in user's recommendations.
func (p *Page) Recommended() []Product { return p.shop.Recommended(p.ctx, p.User.ID) }

// Now returns the wall-clock time; printed inside a fragment, it shows
// when the fragment was rendered, which stays put while it is served from
// the cache.
func (p *Page) Now() string { return time.Now().Format("15:04:05.000") }

// Stats returns the fragment cache's counters as they are when the
// template calls it: printed at the end of a page, they include the page's
// own blocks.
func (p *Page) Stats() fragment.Stats { return p.fc.Stats() }

// Invalidated returns how many stored fragments the invalidate buttons
// have deleted since start. (fragment.Stats.DelBlocks counts "del"
// blocks, which the demo's templates do not use.)
func (p *Page) Invalidated() uint64 { return p.invalidated.Load() }

// Queries returns how many slow queries the shop has run since start.
func (p *Page) Queries() uint64 { return p.shop.Queries() }

// Elapsed returns the time since the request started, in milliseconds with
// two decimals: printed at the end of a page, the page's render time.
func (p *Page) Elapsed() string {
	ms := float64(time.Since(p.start)) / float64(time.Millisecond)
	return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
}
