package httpcache

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// keyParts are what a default key is made of, as handlers see them.
type keyParts struct {
	Scheme, Host string
	Path         string     // r.URL.Path
	Query        url.Values // r.URL.Query(), nil when empty
	Fwd          url.Values // risky headers by lower-case name, nil when none
}

// parseKey reads a default key back into its parts: that it can is what
// makes the key injective, since equal keys then have equal parts.
func parseKey(t testing.TB, prefix, key string) keyParts {
	t.Helper()
	rest, ok := strings.CutPrefix(key, prefix)
	require.True(t, ok, "key %q lacks prefix %q", key, prefix)
	var p keyParts
	p.Scheme, rest, ok = strings.Cut(rest, "://")
	require.True(t, ok, "no scheme in %q", key)
	base, fwd, hasFwd := strings.Cut(rest, " ")
	end := strings.IndexAny(base, "/?")
	if end < 0 {
		end = len(base)
	}
	p.Host, base = base[:end], base[end:]
	escaped, query, hasQuery := strings.Cut(base, "?")
	path, err := url.PathUnescape(escaped)
	require.NoError(t, err, "path of %q", key)
	p.Path = path
	if hasQuery {
		p.Query, err = url.ParseQuery(query)
		require.NoError(t, err, "query of %q", key)
		require.NotEmpty(t, p.Query, "empty query written into %q", key)
	}
	if hasFwd {
		fields, ok := strings.CutPrefix(fwd, "fwd:")
		require.True(t, ok, "unknown section %q in %q", fwd, key)
		p.Fwd, err = url.ParseQuery(fields)
		require.NoError(t, err)
		require.NotEmpty(t, p.Fwd)
	}
	return p
}

// partsOf are the parts a request's key must hold: what its handler can
// tell it apart by.
func partsOf(r *http.Request, trusted bool, keyHeaders ...string) (keyParts, error) {
	scheme, host, err := origin(r, trusted)
	if err != nil {
		return keyParts{}, err
	}
	p := keyParts{Scheme: scheme, Host: host, Path: r.URL.Path}
	if q := r.URL.Query(); len(q) > 0 {
		p.Query = q
	}
	names := riskyHeaders
	if trusted {
		names = riskyHeaders[4:]
	}
	for _, name := range append(slices.Clone(names), keyHeaders...) {
		if vs := r.Header.Values(name); len(vs) > 0 {
			if p.Fwd == nil {
				p.Fwd = url.Values{}
			}
			p.Fwd[strings.ToLower(name)] = vs
		}
	}
	return p, nil
}

func TestKeyParts(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	trusting := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{TrustForwarded: func(*http.Request) bool { return true }})
	tests := []struct {
		name    string
		c       *Cache
		target  string
		tls     bool
		header  []string
		want    string
		wantErr bool
	}{
		{"host lower-cased", c, "http://SHOP.example/a", false, nil, "view/http://shop.example/a", false},
		{"http default port dropped", c, "http://shop.example:80/a", false, nil, "view/http://shop.example/a", false},
		{"https default port dropped", c, "https://shop.example:443/a", true, nil, "view/https://shop.example/a", false},
		{"80 kept for https", c, "https://shop.example:80/a", true, nil, "view/https://shop.example:80/a", false},
		{"empty port dropped", c, "http://shop.example:/a", false, nil, "view/http://shop.example/a", false},
		{"IPv6 literal", c, "http://[::1]:8080/a", false, nil, "view/http://[::1]:8080/a", false},
		{"IPv6 default port", c, "http://[::1]:80/a", false, nil, "view/http://[::1]/a", false},
		{"query sorted by name, values kept in order", c, "http://s.example/a?z=2&a=1&z=1", false, nil, "view/http://s.example/a?a=1&z=2&z=1", false},
		{"separators in values escaped", c, "http://s.example/a?q=x%26y%3Dz", false, nil, "view/http://s.example/a?q=x%26y%3Dz", false},
		{"untrusted forwarded host is keyed", c, "http://s.example/a", false, []string{"X-Forwarded-Host", "evil.example"},
			"view/http://s.example/a fwd:x-forwarded-host=evil.example", false},
		{"untrusted method override is keyed", c, "http://s.example/a", false, []string{"X-HTTP-Method-Override", "DELETE"},
			"view/http://s.example/a fwd:x-http-method-override=DELETE", false},
		{"trusted X-Forwarded-Host and Proto", trusting, "http://internal:8080/a", false,
			[]string{"X-Forwarded-Host", "Shop.Example", "X-Forwarded-Proto", "HTTPS"}, "view/https://shop.example/a", false},
		{"trusted X-Forwarded-Port", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Host", "shop.example", "X-Forwarded-Proto", "https", "X-Forwarded-Port", "8443"}, "view/https://shop.example:8443/a", false},
		{"trusted default X-Forwarded-Port", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Host", "shop.example", "X-Forwarded-Proto", "https", "X-Forwarded-Port", "443"}, "view/https://shop.example/a", false},
		{"trusted Forwarded", trusting, "http://internal/a", false,
			[]string{"Forwarded", `for=192.0.2.1;proto=https;host="shop.example:8443", for=10.0.0.1`}, "view/https://shop.example:8443/a", false},
		{"Forwarded and X-Forwarded-Host that disagree", trusting, "http://internal/a", false,
			[]string{"Forwarded", "host=shop.example", "X-Forwarded-Host", "evil.example"}, "", true},
		{"Forwarded and X-Forwarded-Proto that disagree", trusting, "http://internal/a", false,
			[]string{"Forwarded", "proto=https", "X-Forwarded-Proto", "http"}, "", true},
		{"Forwarded and X-Forwarded-Host that agree", trusting, "http://internal/a", false,
			[]string{"Forwarded", "host=shop.example;proto=https", "X-Forwarded-Host", "Shop.Example", "X-Forwarded-Proto", "https"},
			"view/https://shop.example/a", false},
		{"Forwarded and X-Forwarded-Host agree up to the default port", trusting, "http://internal/a", false,
			[]string{"Forwarded", `host="shop.example:443"`, "X-Forwarded-Host", "shop.example", "X-Forwarded-Proto", "https"},
			"view/https://shop.example/a", false},
		{"Forwarded host with another port", trusting, "http://internal/a", false,
			[]string{"Forwarded", `host="shop.example:8443"`, "X-Forwarded-Host", "shop.example", "X-Forwarded-Proto", "https"}, "", true},
		{"Forwarded host, X-Forwarded-Proto", trusting, "http://internal/a", false,
			[]string{"Forwarded", "host=shop.example", "X-Forwarded-Proto", "https"}, "view/https://shop.example/a", false},
		{"X-Forwarded-Port that contradicts the host's port", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Host", "shop.example:443", "X-Forwarded-Proto", "https", "X-Forwarded-Port", "1337"}, "", true},
		{"X-Forwarded-Port that repeats the host's port", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Host", "shop.example:8443", "X-Forwarded-Proto", "https", "X-Forwarded-Port", "8443"},
			"view/https://shop.example:8443/a", false},
		{"X-Forwarded-Port that contradicts the Host header's port", trusting, "http://shop.example:443/a", false,
			[]string{"X-Forwarded-Proto", "https", "X-Forwarded-Port", "1337"}, "", true},
		{"X-Forwarded-Port for the Host header", trusting, "http://shop.example/a", false,
			[]string{"X-Forwarded-Port", "8080"}, "view/http://shop.example:8080/a", false},
		{"X-Forwarded-Ports that disagree", trusting, "http://shop.example/a", false,
			[]string{"X-Forwarded-Port", "80, 8080"}, "", true},
		{"trusted, other risky headers still keyed", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Host", "shop.example", "X-Original-URL", "/admin"}, "view/http://shop.example/a fwd:x-original-url=%2Fadmin", false},
		{"forwarded hosts that disagree", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Host", "evil.example, shop.example"}, "", true},
		{"forwarded proto that is not http", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Proto", "gopher"}, "", true},
		{"forwarded host with a path", trusting, "http://internal/a", false,
			[]string{"X-Forwarded-Host", "evil.example/x"}, "", true},
		{"no host", c, "/a", false, []string{"Host", ""}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for i := 0; i+1 < len(tt.header); i += 2 {
				if tt.header[i] == "Host" {
					r.Host = tt.header[i+1]
					continue
				}
				r.Header.Add(tt.header[i], tt.header[i+1])
			}
			got, err := tt.c.Key(r)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNormalHost(t *testing.T) {
	for _, bad := range []string{"", ":80", "a b", "a/b", "a?b", "a#b", "a@b", "[::1", "[::1]x", "[::1]:x", "a:b:c", "a:123456", "é.example", "a\x00b"} {
		_, err := normalHost(bad, "http")
		assert.ErrorIs(t, err, errNoHost, "%q", bad)
	}
}

// randomRequest builds a request from a small alphabet of the characters
// that matter to the key's encoding, so that collisions, if the encoding
// allowed any, would be found.
func randomRequest(rng *rand.Rand) *http.Request {
	pick := func(alphabet string, n int) string {
		var b strings.Builder
		for range rng.IntN(n + 1) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	const tricky = "ab/?&=+% :#;,fwd vary"
	hosts := []string{"a.example", "A.example", "a.example:80", "a.example:443", "a.example:8080", "b.example", "[::1]", "[::1]:80"}
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = hosts[rng.IntN(len(hosts))]
	if rng.IntN(2) == 0 {
		r.TLS = &tls.ConnectionState{}
	}
	r.URL.Path = "/" + pick(tricky, 6)
	if rng.IntN(3) == 0 {
		r.URL.RawPath = strings.ReplaceAll(r.URL.EscapedPath(), "a", "%61")
	}
	q := url.Values{}
	for range rng.IntN(4) {
		q.Add(pick(tricky, 3), pick(tricky, 3))
	}
	r.URL.RawQuery = q.Encode()
	if rng.IntN(2) == 0 && len(q) > 0 { // the same query, other order and encoding
		var parts []string
		for k, vs := range q {
			for _, v := range vs {
				parts = append(parts, url.PathEscape(k)+"="+url.PathEscape(v))
			}
		}
		r.URL.RawQuery = strings.Join(parts, "&")
	}
	for range rng.IntN(3) {
		r.Header.Add(riskyHeaders[rng.IntN(len(riskyHeaders))], pick(tricky, 4))
	}
	if rng.IntN(3) == 0 {
		r.Header.Add("X-Tenant", pick(tricky, 4)) // in Options.KeyHeaders
	}
	return r
}

func TestKeyIsInjective(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprint("trusted=", trusted), func(t *testing.T) {
			c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{
				TrustForwarded: func(*http.Request) bool { return trusted },
				KeyHeaders:     []string{"x-tenant"},
			})
			rng := rand.New(rand.NewPCG(13, 1))
			seen := map[string]keyParts{}
			for range 20000 {
				r := randomRequest(rng)
				want, perr := partsOf(r, trusted, "X-Tenant")
				key, err := c.Key(r)
				if err != nil || perr != nil {
					require.Equal(t, err != nil, perr != nil, "key error %v, parts error %v", err, perr)
					continue
				}
				got := parseKey(t, "view/", key)
				require.Equal(t, want, got, "key %q of %s", key, r.URL)
				if prev, ok := seen[key]; ok {
					require.Equal(t, prev, got)
				}
				seen[key] = got
			}
			assert.Greater(t, len(seen), 1000, "the generator makes distinct requests")
		})
	}
}

// FuzzKeyInjective checks, for any two requests, that equal keys mean
// requests a handler cannot tell apart by scheme, host, path, query or the
// headers the key holds.
func FuzzKeyInjective(f *testing.F) {
	f.Add("http://a.example/p?x=1&x=2", "", "http://a.example/p?x=2&x=1", "")
	f.Add("http://a.example/p?ab=c", "", "http://a.example/p?a=bc", "")
	f.Add("http://a.example/a%2Fb", "", "http://a.example/a/b", "")
	f.Add("http://a.example/p", "evil.example", "http://a.example/p", "")
	f.Add("https://a.example/p", "", "http://a.example/p", "")
	f.Add("http://a.example/p%20fwd:x", "", "http://a.example/p", "x")
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	build := func(target, xfh string) *http.Request {
		u, err := url.Parse(target)
		if err != nil || u.Host == "" {
			return nil
		}
		r := &http.Request{Method: "GET", URL: u, Host: u.Host, Header: http.Header{}}
		if u.Scheme == "https" {
			r.TLS = &tls.ConnectionState{}
		}
		if xfh != "" {
			r.Header.Set("X-Forwarded-Host", xfh)
		}
		return r
	}
	f.Fuzz(func(t *testing.T, target1, xfh1, target2, xfh2 string) {
		r1, r2 := build(target1, xfh1), build(target2, xfh2)
		if r1 == nil || r2 == nil {
			return
		}
		k1, err1 := c.Key(r1)
		k2, err2 := c.Key(r2)
		if err1 != nil || err2 != nil {
			return
		}
		p1, _ := partsOf(r1, false)
		p2, _ := partsOf(r2, false)
		require.Equal(t, p1, parseKey(t, "view/", k1))
		require.Equal(t, p2, parseKey(t, "view/", k2))
		if k1 == k2 {
			require.Equal(t, p1, p2)
		}
	})
}

func TestVariantKey(t *testing.T) {
	m := &marker{id: "\x00\x01\x02\x03\x04\x05\x06\x07", names: []string{"accept-encoding", "accept-language"}}
	key := func(header ...string) string {
		r := httptest.NewRequest("GET", "/", nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		return variantKey("view/http://a.example/", m, r)
	}
	assert.Equal(t, "view/http://a.example/ vary:0001020304050607 accept-encoding=gzip", key("Accept-Encoding", "gzip"))
	distinct := []string{
		key(),
		key("Accept-Language", ""),
		key("Accept-Language", "de"),
		key("Accept-Language", "de, fr"),
		key("Accept-Language", "de", "Accept-Language", "fr"),
		key("Accept-Language", "fr", "Accept-Language", "de"),
		key("Accept-Encoding", "de"),
		key("Accept-Encoding", "gzip", "Accept-Language", "de"),
	}
	seen := map[string]bool{}
	for _, k := range distinct {
		assert.False(t, seen[k], "%q twice", k)
		seen[k] = true
	}
	assert.Equal(t, key("Accept-Language", "de"), key("Accept-Language", "de", "Cookie", "x"), "headers not named do not count")
}

func TestRiskyHeadersAreCanonical(t *testing.T) {
	for _, name := range riskyHeaders {
		assert.Equal(t, http.CanonicalHeaderKey(name), name)
	}
	for _, name := range []string{"A", "X-Ab-C", "Etag", "X-1a", "_x"} {
		assert.True(t, isCanonical(name), name)
	}
	for _, name := range []string{"a", "X-ab", "ETag", "X-AB"} {
		assert.False(t, isCanonical(name), name)
	}
}

func TestKeyHeaders(t *testing.T) {
	tests := []struct {
		name       string
		keyHeaders []string
		trusted    bool
		header     []string
		want       string
	}{
		{"absent", []string{"X-Tenant"}, false, nil, "view/http://s.example/a"},
		{"keyed", []string{"X-Tenant"}, false, []string{"X-Tenant", "acme"}, "view/http://s.example/a fwd:x-tenant=acme"},
		{"any capitalisation in the option", []string{"x-TENANT"}, false, []string{"X-Tenant", "acme"}, "view/http://s.example/a fwd:x-tenant=acme"},
		{"empty value is not absent", []string{"X-Tenant"}, false, []string{"X-Tenant", ""}, "view/http://s.example/a fwd:x-tenant="},
		{"values in order", []string{"X-Tenant"}, false, []string{"X-Tenant", "b", "X-Tenant", "a"}, "view/http://s.example/a fwd:x-tenant=b&x-tenant=a"},
		{"with risky headers", []string{"X-Tenant"}, false, []string{"X-Tenant", "acme", "X-Url-Scheme", "https"},
			"view/http://s.example/a fwd:x-tenant=acme&x-url-scheme=https"},
		{"a risky header named again is keyed once", []string{"X-Url-Scheme"}, false, []string{"X-Url-Scheme", "https"},
			"view/http://s.example/a fwd:x-url-scheme=https"},
		{"trusted requests too", []string{"X-Tenant"}, true, []string{"X-Tenant", "acme", "X-Forwarded-Host", "shop.example"},
			"view/http://shop.example/a fwd:x-tenant=acme"},
		{"a trusted origin header named is keyed too", []string{"X-Forwarded-Host"}, true, []string{"X-Forwarded-Host", "shop.example"},
			"view/http://shop.example/a fwd:x-forwarded-host=shop.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{
				KeyHeaders:     tt.keyHeaders,
				TrustForwarded: func(*http.Request) bool { return tt.trusted },
			})
			r := httptest.NewRequest("GET", "http://s.example/a", nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Add(tt.header[i], tt.header[i+1])
			}
			got, err := c.Key(r)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	assert.PanicsWithValue(t, `httpcache: KeyHeaders: "X Tenant" is not a header field name`, func() {
		New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{KeyHeaders: []string{"X Tenant"}})
	})
	custom := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{
		KeyHeaders: []string{"X-Tenant"},
		Key:        func(r *http.Request) (string, error) { return r.URL.Path, nil },
	})
	r := httptest.NewRequest("GET", "http://s.example/a", nil)
	r.Header.Set("X-Tenant", "acme")
	got, err := custom.Key(r)
	require.NoError(t, err)
	assert.Equal(t, "/a", got, "a custom Key is the whole key")
}

// TestKeyHeadersServe: a page made from a header in KeyHeaders is served
// only to requests with the same value.
func TestKeyHeadersServe(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := New(open(t), Options{KeyHeaders: []string{"X-Tenant"}})
		h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "tenant %q", r.Header.Get("X-Tenant"))
		}))
		for _, tenant := range []string{"acme", "evil", ""} {
			var header []string
			if tenant != "" {
				header = []string{"X-Tenant", tenant}
			}
			first := do(t, h, http.MethodGet, "http://s.example/p", header...)
			assert.Equal(t, "MISS", first.Header().Get("X-Cache"), tenant)
			assert.Equal(t, fmt.Sprintf("tenant %q", tenant), first.Body.String())
			again := do(t, h, http.MethodGet, "http://s.example/p", header...)
			assert.Equal(t, "HIT", again.Header().Get("X-Cache"), tenant)
			assert.Equal(t, first.Body.String(), again.Body.String())
		}
		deleted, err := c.Delete(t.Context(), "http://s.example/p")
		require.NoError(t, err)
		assert.True(t, deleted, "Delete reaches the request without the header")
		r := httptest.NewRequestWithContext(t.Context(), "GET", "http://s.example/p", nil)
		r.Header.Set("X-Tenant", "acme")
		deleted, err = c.DeleteRequest(t.Context(), r)
		require.NoError(t, err)
		assert.True(t, deleted, "DeleteRequest reaches the others")
	})
}
