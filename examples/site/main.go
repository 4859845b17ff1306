package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fragcache/fragcache/backends"
	_ "github.com/fragcache/fragcache/backends/all" // every CACHE_TYPE: the demo chooses by name
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Environ(), os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "site:", err)
		os.Exit(1)
	}
}

// config is the site's command line and environment.
type config struct {
	addr     string
	delay    time.Duration
	shutdown time.Duration
	cache    backends.Config
}

// parseConfig reads the flags in args and the CACHE_* variables in
// environ. Unlike Flask, whose default backend is "null", the demo stores
// fragments in SimpleCache unless CACHE_TYPE is set: a demo of caching
// with caching off would show nothing.
func parseConfig(args, environ []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("site", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: site [flags]\n\nServes the fragcache demo shop. The cache backend comes from CACHE_* environment\nvariables (default CACHE_TYPE=SimpleCache).\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "`address` to listen on")
	fs.DurationVar(&cfg.delay, "delay", 40*time.Millisecond, "how long every query of the slow data source takes")
	fs.DurationVar(&cfg.shutdown, "shutdown-timeout", 5*time.Second, "how long to let requests finish on SIGINT/SIGTERM")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q (this command takes flags only)", fs.Args())
	}
	if cfg.delay < 0 {
		return config{}, fmt.Errorf("-delay %v is negative", cfg.delay)
	}
	var err error
	if cfg.cache, err = backends.FromEnv(environ, backends.EnvOptions{}); err != nil {
		return config{}, fmt.Errorf("cache configuration: %w", err)
	}
	if !hasEnv(environ, "CACHE_TYPE") {
		cfg.cache.Type = "SimpleCache"
	}
	return cfg, nil
}

// hasEnv reports whether environ sets name, even to "".
func hasEnv(environ []string, name string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// run serves the shop until ctx ends, then shuts down gracefully. ready,
// if not nil, is called with the address once the server listens (tests
// listen on port 0 and need to know which port they got).
func run(ctx context.Context, args, environ []string, stderr io.Writer, ready func(addr string)) error {
	cfg, err := parseConfig(args, environ, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.cache.Logger = logger

	store, err := backends.Open(cfg.cache)
	if err != nil {
		return fmt.Errorf("opening the cache backend: %w", err)
	}
	defer store.Close()
	srv, err := newServer(&Shop{Delay: cfg.delay}, store, cfg.cache.Type, logger)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	var conns connStates
	hs := &http.Server{
		Handler:           srv.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnState:         conns.track,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("serving the fragcache demo shop", "url", "http://"+ln.Addr().String()+"/",
		"cache", cfg.cache.Type, "query_delay", cfg.delay)
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-served: // Serve failed on its own
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdown)
	defer cancel()
	if err := shutdown(sctx, hs, &conns); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// connStates counts the server's connections that are serving a request.
type connStates struct {
	mu     sync.Mutex
	active map[net.Conn]bool
}

// track is the server's ConnState hook.
func (c *connStates) track(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == nil {
		c.active = map[net.Conn]bool{}
	}
	if state == http.StateActive {
		c.active[conn] = true
	} else {
		delete(c.active, conn)
	}
}

func (c *connStates) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active) > 0
}

// shutdown stops hs gracefully: requests in flight finish, then the
// connections left are closed. http.Server.Shutdown alone would also wait,
// up to 5 s, for connections that have not sent a request yet — browsers
// open them ahead of time — so once no request is in flight the rest are
// closed at once.
func shutdown(ctx context.Context, hs *http.Server, conns *connStates) error {
	done := make(chan error, 1)
	go func() { done <- hs.Shutdown(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if !conns.busy() {
				_ = hs.Close() // Shutdown then returns, with nothing left to wait for
				return <-done
			}
		}
	}
}
