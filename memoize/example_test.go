package memoize_test

import (
	"context"
	"fmt"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/memoize"
)

// lookupPrice stands for a slow query. A named function needs no
// Options.Name: its Go name identifies it in keys.
func lookupPrice(_ context.Context, sku string) (float64, error) {
	fmt.Println("(querying the price of", sku+")")
	return 9.99, nil
}

// The first call with an argument runs the function and stores its result;
// later calls with the same argument are answered from the cache.
func ExampleFunc() {
	ctx := context.Background()
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	price := memoize.Func(cache, lookupPrice, memoize.Options{Timeout: 5 * time.Minute})

	for _, sku := range []string{"lamp", "lamp", "desk"} {
		p, err := price.Call(ctx, sku)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sku, p)
	}
	fmt.Printf("%+v\n", price.Stats())
	// Output:
	// (querying the price of lamp)
	// lamp 9.99
	// lamp 9.99
	// (querying the price of desk)
	// desk 9.99
	// {Hits:1 Misses:2 Calls:2 Waits:0 Bypasses:0 BackendErrors:0 Skips:0 Breaker:closed StaleHits:0 Refreshes:0}
}

// Function literals need a Name: their Go names (main.main.func1) say
// where they were written, not what they compute. A function of several
// arguments takes them as a struct: every field is part of the key, unless
// IgnoreFields leaves it out (here, the request ID).
func ExampleFunc_struct() {
	type sum struct {
		A, B      int
		RequestID string
	}
	ctx := context.Background()
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	add := memoize.Func(cache, func(_ context.Context, s sum) (int, error) {
		fmt.Println("(adding)")
		return s.A + s.B, nil
	}, memoize.Options{Name: "add", IgnoreFields: []string{"RequestID"}})

	for _, id := range []string{"r1", "r2"} {
		total, _ := add.Call(ctx, sum{A: 2, B: 3, RequestID: id})
		fmt.Println(total)
	}
	// Output:
	// (adding)
	// 5
	// 5
}

// After the data behind a function changes, DeleteMemoized invalidates
// every stored result in one write, and Delete exactly one.
func ExampleMemoized_DeleteMemoized() {
	ctx := context.Background()
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	stock := map[string]int{"lamp": 3, "desk": 1}
	inStock := memoize.Func(cache, func(_ context.Context, sku string) (int, error) {
		return stock[sku], nil
	}, memoize.Options{Name: "inStock"})

	show := func() {
		lamp, _ := inStock.Call(ctx, "lamp")
		desk, _ := inStock.Call(ctx, "desk")
		fmt.Println("lamp", lamp, "desk", desk)
	}
	show()
	stock["lamp"], stock["desk"] = 2, 0
	show() // still the stored results
	if _, err := inStock.Delete(ctx, "lamp"); err != nil {
		fmt.Println(err)
	}
	show() // lamp recomputed
	if err := inStock.DeleteMemoized(ctx); err != nil {
		fmt.Println(err)
	}
	show() // everything recomputed
	// Output:
	// lamp 3 desk 1
	// lamp 3 desk 1
	// lamp 2 desk 1
	// lamp 2 desk 0
}

// Repo is a method receiver: its CacheID keeps two repositories (two
// tenants here) from sharing entries.
type Repo struct{ tenant string }

// CacheID identifies the repository in cache keys.
func (r *Repo) CacheID() string { return r.tenant }

func (r *Repo) countUsers(_ context.Context, active bool) (int, error) {
	fmt.Println("(counting users of", r.tenant+")")
	return len(r.tenant), nil
}

// A method is memoized through its method expression, (*Repo).countUsers;
// the receiver is passed to Call. DeleteInstance invalidates one
// receiver's results.
func ExampleMethod() {
	ctx := context.Background()
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	countUsers := memoize.Method(cache, (*Repo).countUsers, memoize.Options{})

	acme, initech := &Repo{"acme"}, &Repo{"initech"}
	for _, r := range []*Repo{acme, initech, acme} {
		n, _ := countUsers.Call(ctx, r, true)
		fmt.Println(r.tenant, n)
	}
	if err := countUsers.DeleteInstance(ctx, acme); err != nil {
		fmt.Println(err)
	}
	n, _ := countUsers.Call(ctx, acme, true)
	fmt.Println("acme", n)
	n, _ = countUsers.Call(ctx, initech, true)
	fmt.Println("initech", n)
	// Output:
	// (counting users of acme)
	// acme 4
	// (counting users of initech)
	// initech 7
	// acme 4
	// (counting users of acme)
	// acme 4
	// initech 7
}
