package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
	"github.com/fragcache/fragcache/metrics/prommetrics"
)

// staticFS holds the stylesheet every engine's pages link to.
//
//go:embed static
var staticFS embed.FS

// userCookie holds the name of the signed-in user.
const userCookie = "user"

// server is the shop's HTTP side: one set of handlers over every engine.
type server struct {
	shop    *Shop
	store   *backends.Cache // where fragments live; app code deletes from it
	fc      *fragment.Cache
	backend string // CACHE_TYPE, shown on the pages
	engines []engine
	logger  *slog.Logger

	metrics     http.Handler // GET /metrics
	invalidated atomic.Uint64
	extras      *extras // the memoize and httpcache pages
}

// newServer builds the fragment cache over store and every engine.
func newServer(shop *Shop, store *backends.Cache, backend string, logger *slog.Logger) (*server, error) {
	// Every use of the store goes through the metrics' observed Cache, so
	// /metrics counts fragment, memoize, httpcache and invalidate calls.
	m := prommetrics.New(prommetrics.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	store = m.Cache(backend, store)
	// No KeyPrefix or Version: fragments are stored under exactly
	// keys.MakeTemplateFragmentKey(name, varyOn...), which is what lets the
	// invalidate handler compute the key a template used.
	fc := fragment.New(store, fragment.Options{Logger: logger, Observer: badgeObserver{next: m}})
	s := &server{shop: shop, store: store, fc: fc, backend: backend, logger: logger,
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	s.extras = newExtras(shop, store, logger)
	for _, f := range engineFactories {
		e, err := f(fc)
		if err != nil {
			return nil, err
		}
		s.engines = append(s.engines, e)
	}
	return s, nil
}

// handler returns the site's routes wrapped in request logging.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/"+s.engines[0].Name()+"/", http.StatusFound)
	})
	for _, e := range s.engines {
		mux.HandleFunc("GET /"+e.Name()+"/{$}", s.home(e))
		mux.HandleFunc("GET /"+e.Name()+"/product/{id}", s.product(e))
	}
	mux.HandleFunc("POST /invalidate", s.invalidate)
	mux.HandleFunc("POST /signin", s.signin)
	mux.HandleFunc("GET /stats", s.stats)
	mux.Handle("GET /metrics", s.metrics)
	s.extras.routes(mux)
	mux.Handle("GET /static/", http.FileServerFS(staticFS))
	return s.logRequests(mux)
}

// home serves the product list, optionally of one category.
func (s *server) home(e engine) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slug := r.URL.Query().Get("category")
		title := "All products"
		if slug != "" {
			c, ok := s.shop.Category(slug)
			if !ok {
				http.Error(w, fmt.Sprintf("no category %q", slug), http.StatusNotFound)
				return
			}
			title = c.Name
		}
		p := s.newPage(r, e, title)
		p.CategorySlug = slug
		s.render(w, r, e, viewHome, p)
	}
}

// product serves one product's page.
func (s *server) product(e engine) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || !s.shop.Exists(id) {
			http.Error(w, fmt.Sprintf("no product %q", r.PathValue("id")), http.StatusNotFound)
			return
		}
		p := s.newPage(r, e, "Product #"+strconv.Itoa(id))
		p.ProductID = id
		s.render(w, r, e, viewProduct, p)
	}
}

// newPage fills in what every page shows.
func (s *server) newPage(r *http.Request, current engine, title string) *Page {
	// Links and forms lead back to the page without the last action's
	// notice.
	path := localPath(r.URL.RequestURI()).String()
	p := &Page{
		Engine:      current.Name(),
		Title:       title,
		Path:        path,
		Backend:     s.backend,
		User:        s.user(r),
		Users:       s.shop.Users(),
		Flash:       flash(r.URL.Query()),
		ctx:         r.Context(),
		shop:        s.shop,
		fc:          s.fc,
		start:       requestStart(r),
		invalidated: &s.invalidated,
	}
	// The same page in another engine is the same path under its prefix.
	rest := strings.TrimPrefix(path, "/"+current.Name())
	for _, e := range s.engines {
		p.Engines = append(p.Engines, EngineLink{Name: e.Name(), Href: "/" + e.Name() + rest, Current: e == current})
	}
	return p
}

// user returns the signed-in user: the one the cookie names, else the
// first.
func (s *server) user(r *http.Request) User {
	if c, err := r.Cookie(userCookie); err == nil {
		if u, ok := s.shop.User(c.Value); ok {
			return u
		}
	}
	return s.shop.Users()[0]
}

// render renders a page into a buffer first, so that a failed render is a
// clean 500 rather than half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, e engine, view string, p *Page) {
	var buf bytes.Buffer
	ctx, blocks := withOutcomes(r.Context())
	if err := e.Render(ctx, &buf, view, p); err != nil {
		s.logger.Error("render failed", "engine", e.Name(), "view", view, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(blocks.badge(buf.Bytes()))
}

// Fragment groups the invalidate form can delete.
const (
	fragSidebar  = "sidebar"
	fragProducts = "products"
	fragProduct  = "product"
)

// fragmentKeys returns the keys the templates store a fragment group
// under, for every engine: the same keys.MakeTemplateFragmentKey calls the
// cache blocks make with their names and vary_on values.
func (s *server) fragmentKeys(group string, form url.Values) ([]string, error) {
	var out []string
	for _, e := range s.engines {
		name := e.Name() + "-" + group
		switch group {
		case fragSidebar:
			out = append(out, keys.MakeTemplateFragmentKey(name))
		case fragProducts:
			// The product list varies on the category slug, "" for all.
			out = append(out, keys.MakeTemplateFragmentKey(name, ""))
			for _, slug := range s.shop.CategorySlugs() {
				out = append(out, keys.MakeTemplateFragmentKey(name, slug))
			}
		case fragProduct:
			id, err := strconv.Atoi(form.Get("id"))
			if err != nil || !s.shop.Exists(id) {
				return nil, fmt.Errorf("no product %q", form.Get("id"))
			}
			out = append(out, keys.MakeTemplateFragmentKey(name, strconv.Itoa(id)))
		default:
			return nil, fmt.Errorf("no fragment group %q (want %s, %s or %s)", group, fragSidebar, fragProducts, fragProduct)
		}
	}
	return out, nil
}

// invalidate deletes a group of fragments, as app code does after the data
// behind them changes, and returns to the page the form was on.
func (s *server) invalidate(w http.ResponseWriter, r *http.Request) {
	group := r.PostFormValue("fragment")
	ks, err := s.fragmentKeys(group, r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	deleted := 0
	for _, k := range ks {
		ok, err := s.store.Delete(r.Context(), k)
		if err != nil {
			s.logger.Error("invalidate failed", "key", k, "err", err)
			http.Error(w, "cache backend error deleting "+k, http.StatusBadGateway)
			return
		}
		if ok {
			deleted++
		}
	}
	s.invalidated.Add(uint64(deleted))
	s.logger.Info("invalidated", "fragment", group, "keys", len(ks), "deleted", deleted)
	back := localPath(r.PostFormValue("return"))
	q := back.Query()
	q.Set("invalidated", group)
	q.Set("deleted", strconv.Itoa(deleted))
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

// flash describes the last invalidation from the query the invalidate
// handler redirected with. It builds the text itself rather than echoing
// a query parameter, so a link cannot put words on the page.
func flash(q url.Values) string {
	group := q.Get("invalidated")
	n, err := strconv.Atoi(q.Get("deleted"))
	if err != nil || !slices.Contains([]string{fragSidebar, fragProducts, fragProduct}, group) {
		return ""
	}
	return fmt.Sprintf("Invalidated the %s fragments of every engine: %d stored fragment(s) deleted.", group, n)
}

// signin switches the signed-in user, to show fragments that vary on it.
func (s *server) signin(w http.ResponseWriter, r *http.Request) {
	u, ok := s.shop.User(r.PostFormValue("user"))
	if !ok {
		http.Error(w, fmt.Sprintf("no user %q", r.PostFormValue("user")), http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: userCookie, Value: u.Name, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, localPath(r.PostFormValue("return")).String(), http.StatusSeeOther)
}

// localPath returns s as a path and query on this site, without the
// parameters of the invalidation notice. Anything else (another host, a
// scheme, garbage) becomes "/", so the forms' return field cannot redirect
// off the site.
func localPath(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return &url.URL{Path: "/"}
	}
	q := u.Query()
	q.Del("invalidated")
	q.Del("deleted")
	return &url.URL{Path: u.Path, RawQuery: q.Encode()}
}

// statsJSON is what GET /stats returns.
type statsJSON struct {
	fragment.Stats
	Queries     uint64 `json:"Queries"`
	Invalidated uint64 `json:"Invalidated"` // stored fragments the invalidate buttons deleted
	Backend     string `json:"Backend"`
}

// stats serves the counters as JSON, for scripts and tests.
func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(statsJSON{Stats: s.fc.Stats(), Queries: s.shop.Queries(), Invalidated: s.invalidated.Load(), Backend: s.backend})
}

type startKey struct{}

// requestStart returns when logRequests saw the request arrive.
func requestStart(r *http.Request) time.Time {
	if t, ok := r.Context().Value(startKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logRequests logs every request with its status and duration, and
// records its start for the page's render time.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r = r.WithContext(context.WithValue(r.Context(), startKey{}, start))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		s.logger.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.RequestURI(),
			"status", sw.status, "duration", time.Since(start))
	})
}
