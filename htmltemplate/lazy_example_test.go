package htmltemplate_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
)

// db stands for a database: Products is the slow query a fragment saves.
type db struct{ queries int }

func (d *db) Products(ctx context.Context, category string) []string {
	d.queries++
	return []string{category + " lamp", category + " chair"}
}

// page is what the handler passes to the template: the request's context
// and parameters, and methods that query only when the template calls
// them, that is only when a cache block misses.
type page struct {
	ctx      context.Context
	db       *db
	Category string
}

func (p *page) Products() []string { return p.db.Products(p.ctx, p.Category) }

// Load data lazily: a handler that queried before rendering would pay for
// the query on every request, hit or miss. Here the template calls
// .Products inside the block, so a hit runs no query.
func Example_lazyData() {
	cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "SimpleCache"})
	if err != nil {
		log.Fatal(err)
	}
	store, err := backends.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	t := htmltemplate.Must(htmltemplate.New("list.html", fragment.New(store, fragment.Options{})).
		Parse(`{{ cache 300 "products" .Category }}<ul>{{ range .Products }}<li>{{ . }}</li>{{ end }}</ul>{{ endcache }}`))

	shop := &db{}
	for range 3 { // three requests
		ctx := context.Background() // in a handler: r.Context()
		if err := t.ExecuteContext(ctx, os.Stdout, &page{ctx: ctx, db: shop, Category: "garden"}); err != nil {
			log.Fatal(err)
		}
		fmt.Println()
	}
	fmt.Println("queries:", shop.queries)
	// Output:
	// <ul><li>garden lamp</li><li>garden chair</li></ul>
	// <ul><li>garden lamp</li><li>garden chair</li></ul>
	// <ul><li>garden lamp</li><li>garden chair</li></ul>
	// queries: 1
}
