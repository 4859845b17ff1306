package httpcache

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAttackForwardedOverridesXForwardedHost: with TrustForwarded, the key's
// host comes from Forwarded when a request has one, and from
// X-Forwarded-Host only otherwise. The option's contract is a proxy that
// sets "the Forwarded or X-Forwarded-Host, X-Forwarded-Proto and
// X-Forwarded-Port headers" — nginx's usual proxy_set_header lines set the
// X-Forwarded-* ones and pass a client's Forwarded through. Most Go code
// behind such a proxy (gorilla/handlers.ProxyHeaders, and this handler)
// takes the host from X-Forwarded-Host. A client that sends
// "Host: evil.example" (the proxy turns it into X-Forwarded-Host) and
// "Forwarded: host=shop.example" gets a page with evil.example links stored
// under shop.example's key, and every visitor of shop.example is served it.
// Two headers that name different hosts must not give a key (as values
// that disagree within one header already do not).
func TestAttackForwardedOverridesXForwardedHost(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := New(open(t), Options{TrustForwarded: func(*http.Request) bool { return true }})
		h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host := r.Header.Get("X-Forwarded-Host") // as gorilla/handlers.ProxyHeaders reads it
			if host == "" {
				host = r.Host
			}
			fmt.Fprintf(w, `<a href="https://%s/cart">cart</a>`, host)
		}))

		// The attacker's request, as the proxy forwards it.
		do(t, h, http.MethodGet, "http://backend:8080/",
			"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https",
			"Forwarded", "host=shop.example")
		// An honest visitor of shop.example.
		rec := do(t, h, http.MethodGet, "http://backend:8080/",
			"X-Forwarded-Host", "shop.example", "X-Forwarded-Proto", "https")
		assert.Contains(t, rec.Body.String(), "https://shop.example/cart")
		assert.NotContains(t, rec.Body.String(), "evil.example", "a visitor of shop.example is served the attacker's page")
	})
}

// echoScheme is the request scheme as labstack/echo's Context.Scheme (and
// its many copies) computes it.
func echoScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if s := r.Header.Get("X-Forwarded-Proto"); s != "" {
		return s
	}
	if s := r.Header.Get("X-Forwarded-Protocol"); s != "" {
		return s
	}
	if r.Header.Get("X-Forwarded-Ssl") == "on" {
		return "https"
	}
	if s := r.Header.Get("X-Url-Scheme"); s != "" {
		return s
	}
	return "http"
}

// TestAttackSchemeHeadersOutsideTheKey: without TrustForwarded, the key
// holds the values of the request headers frameworks are known to take the
// host, scheme, path or method from (riskyHeaders), so that a forged one
// fills only an entry no honest request reads. The list misses
// X-Forwarded-Protocol, X-Forwarded-Ssl and X-Url-Scheme, which
// labstack/echo's Context.Scheme reads after X-Forwarded-Proto. On a site
// served over plain HTTP (or behind a proxy that does not set
// X-Forwarded-Proto), one request with "X-Url-Scheme: https://evil.example/?"
// stores a page whose absolute links all lead to evil.example, under the
// key every visitor reads.
func TestAttackSchemeHeadersOutsideTheKey(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := New(open(t), Options{})
		h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<a href="%s://%s/cart">cart</a>`, echoScheme(r), r.Host)
		}))
		for _, attack := range [][]string{
			{"X-Url-Scheme", "https://evil.example/?"},
			{"X-Forwarded-Protocol", "https://evil.example/?"},
		} {
			target := "http://shop.example/" + attack[0]
			do(t, h, http.MethodGet, target, attack...)
			rec := do(t, h, http.MethodGet, target)
			assert.NotContains(t, rec.Body.String(), "evil.example", "one request with %s poisoned the page for every visitor", attack[0])
		}
	})
}
