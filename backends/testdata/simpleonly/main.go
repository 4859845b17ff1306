// Command simpleonly imports only the core backends package and uses
// SimpleCache: TestCoreLinksNoNetworkClient lists its dependencies, and
// `make size` builds it to measure what a program that keeps its cache in
// process links.
package main

import (
	"context"
	"fmt"

	"github.com/fragcache/fragcache/backends"
)

func main() {
	c := backends.New(backends.NewSimple(100), backends.CacheOptions{})
	_ = c.Set(context.Background(), "k", "v")
	var v string
	found, err := c.Get(context.Background(), "k", &v)
	fmt.Println(v, found, err)
}
