package redis

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/cacheopt"
)

// This file builds the Redis backends Open opens: Flask's CACHE_REDIS_*
// settings with Flask's defaults, fragcache's defaults for a cache, and
// CACHE_OPTIONS, read through a typed table into go-redis's own options.

func init() {
	backends.Register("RedisCache", openRedis)
	backends.Register("RedisSentinelCache", openRedisSentinel)
	backends.Register("RedisClusterCache", openRedisCluster)
}

// Flask-Caching's defaults for the CACHE_REDIS_* settings.
const (
	defaultRedisHost           = "localhost"
	defaultRedisPort           = 6379
	defaultRedisSentinel       = "127.0.0.1:26379"
	defaultRedisSentinelMaster = "mymaster"
)

// redisSettings are the CACHE_REDIS_* settings, with Flask's defaults.
type redisSettings struct {
	host, password, url, sentinelMaster, sentinelPassword, cluster string
	port, db                                                       int
	sentinels                                                      []string
}

func readRedisSettings(cfg backends.Config) (redisSettings, error) {
	s := redisSettings{}
	var err error
	for _, p := range []struct {
		key, def string
		dst      *string
	}{
		{"CACHE_REDIS_HOST", defaultRedisHost, &s.host},
		{"CACHE_REDIS_PASSWORD", "", &s.password},
		{"CACHE_REDIS_URL", "", &s.url},
		{"CACHE_REDIS_SENTINEL_MASTER", defaultRedisSentinelMaster, &s.sentinelMaster},
		{"CACHE_REDIS_SENTINEL_PASSWORD", "", &s.sentinelPassword},
		{"CACHE_REDIS_CLUSTER", "", &s.cluster},
	} {
		if *p.dst, err = backends.Setting(cfg, p.key, p.def); err != nil {
			return s, err
		}
	}
	if s.port, err = backends.Setting(cfg, "CACHE_REDIS_PORT", defaultRedisPort); err != nil {
		return s, err
	}
	if s.db, err = backends.Setting(cfg, "CACHE_REDIS_DB", 0); err != nil {
		return s, err
	}
	if s.sentinels, err = backends.Setting(cfg, "CACHE_REDIS_SENTINELS", []string{defaultRedisSentinel}); err != nil {
		return s, err
	}
	return s, nil
}

// openRedis is RedisCache's factory: CACHE_REDIS_URL, or CACHE_REDIS_HOST
// and CACHE_REDIS_PORT, with CACHE_REDIS_PASSWORD and CACHE_REDIS_DB.
func openRedis(cfg backends.Config) (backends.Backend, error) {
	const name = "RedisCache"
	s, err := readRedisSettings(cfg)
	if err != nil {
		return nil, err
	}
	if s.db < 0 {
		return nil, fmt.Errorf("%w: CACHE_REDIS_DB %d is negative", backends.ErrConfig, s.db)
	}
	var opt *goredis.Options
	if s.url != "" {
		if opt, err = parseRedisURL(s.url, s.db); err != nil {
			return nil, err
		}
		if opt.Password == "" {
			opt.Password = s.password
		}
	} else {
		if s.host == "" {
			return nil, fmt.Errorf("%w: %s needs CACHE_REDIS_HOST (or CACHE_REDIS_URL)", backends.ErrConfig, name)
		}
		if s.port < 1 || s.port > 65535 {
			return nil, fmt.Errorf("%w: CACHE_REDIS_PORT %d is not a port number from 1 to 65535", backends.ErrConfig, s.port)
		}
		opt = &goredis.Options{
			Addr:     net.JoinHostPort(s.host, strconv.Itoa(s.port)),
			Password: s.password,
			DB:       s.db,
		}
	}
	near, nearOn, err := takeNearOptions(name, &cfg) // near.go
	if err != nil {
		return nil, err
	}
	o, err := redisOptions(name, cfg, clientOf(opt), urlQuery(s.url), nil)
	if err != nil {
		return nil, err
	}
	if err := LimitReplies(opt, o.maxValueSize); err != nil {
		return nil, err
	}
	client := goredis.NewClient(opt)
	return openNear(&Backend{client: client, topo: oneServer, owned: true, maxValue: cmp.Or(o.maxValueSize, DefaultMaxValueSize)}, client, near, nearOn), nil
}

// parseRedisURL reads CACHE_REDIS_URL as goredis.ParseURL does. As in Flask,
// CACHE_REDIS_DB applies when the URL names no database.
func parseRedisURL(raw string, db int) (*goredis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: CACHE_REDIS_URL is not a URL: %w", backends.ErrConfig, err)
	}
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: CACHE_REDIS_URL (redis://, rediss:// or unix://): %w", backends.ErrConfig, err)
	}
	namesDB := u.Query().Has("db") || (u.Scheme != "unix" && strings.Trim(u.Path, "/") != "")
	if !namesDB {
		opt.DB = db
	}
	return opt, nil
}

// openRedisSentinel is RedisSentinelCache's factory.
func openRedisSentinel(cfg backends.Config) (backends.Backend, error) {
	const name = "RedisSentinelCache"
	s, err := readRedisSettings(cfg)
	if err != nil {
		return nil, err
	}
	if len(s.sentinels) == 0 {
		return nil, fmt.Errorf("%w: %s needs CACHE_REDIS_SENTINELS", backends.ErrConfig, name)
	}
	for _, a := range s.sentinels {
		if err := redisAddr("CACHE_REDIS_SENTINELS", a); err != nil {
			return nil, err
		}
	}
	if s.sentinelMaster == "" {
		return nil, fmt.Errorf("%w: %s needs CACHE_REDIS_SENTINEL_MASTER", backends.ErrConfig, name)
	}
	if s.db < 0 {
		return nil, fmt.Errorf("%w: CACHE_REDIS_DB %d is negative", backends.ErrConfig, s.db)
	}
	opt := &goredis.FailoverOptions{
		MasterName:       s.sentinelMaster,
		SentinelAddrs:    s.sentinels,
		SentinelPassword: s.sentinelPassword,
		Password:         s.password,
		DB:               s.db,
	}
	f := clientOf(opt)
	f.sentinelUsername, f.sentinelPassword = &opt.SentinelUsername, &opt.SentinelPassword
	near, nearOn, err := takeNearOptions(name, &cfg) // near.go
	if err != nil {
		return nil, err
	}
	o, err := redisOptions(name, cfg, f, nil, sentinelOptionTable)
	if err != nil {
		return nil, err
	}
	if err := LimitReplies(opt, o.maxValueSize); err != nil {
		return nil, err
	}
	client := goredis.NewFailoverClient(opt)
	return openNear(&Backend{client: client, topo: oneServer, owned: true, maxValue: cmp.Or(o.maxValueSize, DefaultMaxValueSize)}, client, near, nearOn), nil
}

// openRedisCluster is RedisClusterCache's factory.
func openRedisCluster(cfg backends.Config) (backends.Backend, error) {
	const name = "RedisClusterCache"
	s, err := readRedisSettings(cfg)
	if err != nil {
		return nil, err
	}
	addrs, err := parseRedisCluster(s.cluster)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s needs CACHE_REDIS_CLUSTER", backends.ErrConfig, name)
	}
	if s.db != 0 {
		return nil, fmt.Errorf("%w: CACHE_REDIS_DB is %d, but a Redis Cluster has only database 0", backends.ErrConfig, s.db)
	}
	opt := &goredis.ClusterOptions{Addrs: addrs, Password: s.password}
	f := clientOf(opt)
	f.maxRedirects = &opt.MaxRedirects
	if _, on, err := takeNearOptions(name, &cfg); err != nil || on {
		if err == nil {
			err = fmt.Errorf("%w: CACHE_OPTIONS near_cache: %w", backends.ErrConfig, ErrNearCacheUnsupported)
		}
		return nil, err
	}
	o, err := redisOptions(name, cfg, f, nil, clusterOptionTable)
	if err != nil {
		return nil, err
	}
	if err := LimitReplies(opt, o.maxValueSize); err != nil {
		return nil, err
	}
	return &Backend{client: goredis.NewClusterClient(opt), topo: clusterSlots, owned: true, maxValue: cmp.Or(o.maxValueSize, DefaultMaxValueSize)}, nil
}

// parseRedisCluster splits CACHE_REDIS_CLUSTER, "host1:port1,host2:port2",
// as Flask does: at commas, each part trimmed.
func parseRedisCluster(s string) ([]string, error) {
	var addrs []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			if strings.TrimSpace(s) == "" {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: CACHE_REDIS_CLUSTER %q has an empty item (want e.g. \"host1:port1,host2:port2\")", backends.ErrConfig, s)
		}
		if err := redisAddr("CACHE_REDIS_CLUSTER", part); err != nil {
			return nil, fmt.Errorf("%w (want e.g. \"host1:port1,host2:port2\")", err)
		}
		addrs = append(addrs, part)
	}
	return addrs, nil
}

// redisAddr checks one "host:port" of the CACHE_* key named key.
func redisAddr(key, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s: %q is not host:port", backends.ErrConfig, key, addr)
	}
	if host == "" {
		return fmt.Errorf("%w: %s: %q has no host", backends.ErrConfig, key, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%w: %s: %q: port %q is not a number from 1 to 65535", backends.ErrConfig, key, addr, port)
	}
	return nil
}

// urlQuery returns the query of CACHE_REDIS_URL, or nil; the URL itself is
// checked by parseRedisURL.
func urlQuery(raw string) url.Values {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return u.Query()
}

// clientFields points at the fields of one of go-redis's option structs
// (*goredis.Options, *goredis.FailoverOptions or *goredis.ClusterOptions) that
// fragcache's defaults and CACHE_OPTIONS set. A field the struct does not
// have is nil, and so is its option, which the backend then refuses.
type clientFields struct {
	username, clientName                          *string
	protocol, maxRetries, dialerRetries           *int
	poolSize, minIdleConns, maxIdleConns          *int
	maxActiveConns                                *int
	minRetryBackoff, maxRetryBackoff              *time.Duration
	dialTimeout, readTimeout, writeTimeout        *time.Duration
	poolTimeout, connMaxIdleTime, connMaxLifetime *time.Duration
	contextTimeoutEnabled, poolFIFO               *bool
	tlsConfig                                     **tls.Config

	sentinelUsername, sentinelPassword *string // RedisSentinelCache's
	maxRedirects                       *int    // RedisClusterCache's
}

// clientOf returns the fields of opt that every kind of client has.
func clientOf[O goredis.Options | goredis.FailoverOptions | goredis.ClusterOptions](opt *O) clientFields {
	switch o := any(opt).(type) {
	case *goredis.Options:
		return clientFields{&o.Username, &o.ClientName, &o.Protocol, &o.MaxRetries, &o.DialerRetries,
			&o.PoolSize, &o.MinIdleConns, &o.MaxIdleConns, &o.MaxActiveConns, &o.MinRetryBackoff, &o.MaxRetryBackoff,
			&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.ConnMaxIdleTime, &o.ConnMaxLifetime,
			&o.ContextTimeoutEnabled, &o.PoolFIFO, &o.TLSConfig, nil, nil, nil}
	case *goredis.FailoverOptions:
		return clientFields{&o.Username, &o.ClientName, &o.Protocol, &o.MaxRetries, &o.DialerRetries,
			&o.PoolSize, &o.MinIdleConns, &o.MaxIdleConns, &o.MaxActiveConns, &o.MinRetryBackoff, &o.MaxRetryBackoff,
			&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.ConnMaxIdleTime, &o.ConnMaxLifetime,
			&o.ContextTimeoutEnabled, &o.PoolFIFO, &o.TLSConfig, nil, nil, nil}
	case *goredis.ClusterOptions:
		return clientFields{&o.Username, &o.ClientName, &o.Protocol, &o.MaxRetries, &o.DialerRetries,
			&o.PoolSize, &o.MinIdleConns, &o.MaxIdleConns, &o.MaxActiveConns, &o.MinRetryBackoff, &o.MaxRetryBackoff,
			&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.ConnMaxIdleTime, &o.ConnMaxLifetime,
			&o.ContextTimeoutEnabled, &o.PoolFIFO, &o.TLSConfig, nil, nil, nil}
	}
	panic("unreachable")
}

// redisDefaults are the go-redis options that Open's Redis backends set
// where go-redis's defaults suit a database more than a cache, unless
// CACHE_REDIS_URL's query or CACHE_OPTIONS set them. A cache that cannot
// answer quickly is better skipped than waited for: every fragment of a
// page would wait it out (go-redis's defaults cost a page seconds per
// fragment while the server hangs: 3 s reads, 5 s dials, 3 retries). So:
// short timeouts, one retry (enough to replace a pooled connection that
// died with a restarted server), and the caller's ctx deadline honoured on
// every socket read and write.
var redisDefaults = []struct {
	option string
	set    func(f clientFields)
}{
	{"dial_timeout", func(f clientFields) { *f.dialTimeout = 500 * time.Millisecond }}, // go-redis: 5 s
	{"read_timeout", func(f clientFields) { *f.readTimeout = 250 * time.Millisecond }}, // go-redis: 3 s
	{"write_timeout", func(f clientFields) { *f.writeTimeout = 250 * time.Millisecond }},
	{"pool_timeout", func(f clientFields) { *f.poolTimeout = 250 * time.Millisecond }}, // go-redis: read_timeout + 1 s
	{"max_retries", func(f clientFields) { *f.maxRetries = 1 }},                        // go-redis: 3
	{"dialer_retries", func(f clientFields) { *f.dialerRetries = 1 }},                  // go-redis: 5
	{"context_timeout_enabled", func(f clientFields) { *f.contextTimeoutEnabled = true }},
}

// redisConfig is what CACHE_OPTIONS set: go-redis's options, through
// clientFields, and the backend's own.
type redisConfig struct {
	client        clientFields
	tls           redisTLS
	maxValueSize  int
	goRedisLogger bool
}

// redisTLS are the CACHE_OPTIONS that configure TLS; any of them turns TLS
// on, as a rediss:// URL does.
type redisTLS struct {
	on, skipVerify                        bool
	serverName, caFile, certFile, keyFile string
	set                                   bool
}

// Helpers that build table entries for go-redis fields reached through
// clientFields.
func durationField(name string, f func(c clientFields) *time.Duration) cacheopt.Option[redisConfig] {
	return cacheopt.Duration(name, func(c *redisConfig) *time.Duration { return f(c.client) })
}

func intField(name string, low int, f func(c clientFields) *int) cacheopt.Option[redisConfig] {
	return cacheopt.Int(name, func(c *redisConfig) *int { return f(c.client) }, low)
}

func stringField(name string, f func(c clientFields) *string) cacheopt.Option[redisConfig] {
	return cacheopt.String(name, func(c *redisConfig) *string { return f(c.client) })
}

func boolField(name string, f func(c clientFields) *bool) cacheopt.Option[redisConfig] {
	return cacheopt.Bool(name, func(c *redisConfig) *bool { return f(c.client) })
}

func tlsString(name string, f func(t *redisTLS) *string) cacheopt.Option[redisConfig] {
	return cacheopt.String(name, func(c *redisConfig) *string { c.tls.set = true; return f(&c.tls) })
}

func tlsBool(name string, f func(t *redisTLS) *bool) cacheopt.Option[redisConfig] {
	return cacheopt.Bool(name, func(c *redisConfig) *bool { c.tls.set = true; return f(&c.tls) })
}

// redisOptionTable lists the CACHE_OPTIONS every Redis backend accepts. The
// names of go-redis's options are the ones goredis.ParseURL reads from a
// URL's query, plus username, which a URL gives in its user info.
var redisOptionTable = []cacheopt.Option[redisConfig]{
	stringField("username", func(c clientFields) *string { return c.username }),
	stringField("client_name", func(c clientFields) *string { return c.clientName }),
	cacheopt.Func("protocol", func(c *redisConfig, v any) error {
		n, ok := cacheopt.AsInt(v)
		switch {
		case !ok:
			return cacheopt.TypeError(v, "an integer")
		case n != 2 && n != 3:
			return fmt.Errorf("%d is not a RESP version (2 or 3)", n)
		}
		*c.client.protocol = n
		return nil
	}),
	intField("max_retries", -1, func(c clientFields) *int { return c.maxRetries }), // go-redis: -1 disables retries
	durationField("min_retry_backoff", func(c clientFields) *time.Duration { return c.minRetryBackoff }),
	durationField("max_retry_backoff", func(c clientFields) *time.Duration { return c.maxRetryBackoff }),
	durationField("dial_timeout", func(c clientFields) *time.Duration { return c.dialTimeout }),
	intField("dialer_retries", 0, func(c clientFields) *int { return c.dialerRetries }),
	durationField("read_timeout", func(c clientFields) *time.Duration { return c.readTimeout }),
	durationField("write_timeout", func(c clientFields) *time.Duration { return c.writeTimeout }),
	boolField("context_timeout_enabled", func(c clientFields) *bool { return c.contextTimeoutEnabled }),
	boolField("pool_fifo", func(c clientFields) *bool { return c.poolFIFO }),
	intField("pool_size", 0, func(c clientFields) *int { return c.poolSize }),
	durationField("pool_timeout", func(c clientFields) *time.Duration { return c.poolTimeout }),
	intField("min_idle_conns", 0, func(c clientFields) *int { return c.minIdleConns }),
	intField("max_idle_conns", 0, func(c clientFields) *int { return c.maxIdleConns }),
	intField("max_active_conns", 0, func(c clientFields) *int { return c.maxActiveConns }),
	durationField("conn_max_idle_time", func(c clientFields) *time.Duration { return c.connMaxIdleTime }),
	durationField("conn_max_lifetime", func(c clientFields) *time.Duration { return c.connMaxLifetime }),
	tlsBool("tls", func(t *redisTLS) *bool { return &t.on }),
	tlsString("tls_server_name", func(t *redisTLS) *string { return &t.serverName }),
	tlsBool("tls_skip_verify", func(t *redisTLS) *bool { return &t.skipVerify }),
	tlsString("tls_ca_file", func(t *redisTLS) *string { return &t.caFile }),
	tlsString("tls_cert_file", func(t *redisTLS) *string { return &t.certFile }),
	tlsString("tls_key_file", func(t *redisTLS) *string { return &t.keyFile }),
	cacheopt.PositiveInt(redisLimitOption, func(c *redisConfig) *int { return &c.maxValueSize }),
	cacheopt.Bool(redisLoggerOption, func(c *redisConfig) *bool { return &c.goRedisLogger }),
}

// The options of one kind of client only.
var (
	sentinelOptionTable = []cacheopt.Option[redisConfig]{
		stringField("sentinel_username", func(c clientFields) *string { return c.sentinelUsername }),
		stringField("sentinel_password", func(c clientFields) *string { return c.sentinelPassword }),
	}
	clusterOptionTable = []cacheopt.Option[redisConfig]{
		intField("max_redirects", -1, func(c clientFields) *int { return c.maxRedirects }), // go-redis: -1 disables redirects
	}
)

// redisOptions applies fragcache's defaults (except those the URL's query
// sets) and then CACHE_OPTIONS to the client options f points into, and
// returns the backend's own options. extra are the options of this kind of
// client alone.
func redisOptions(backend string, cfg backends.Config, f clientFields, query url.Values, extra []cacheopt.Option[redisConfig]) (redisConfig, error) {
	for _, d := range redisDefaults {
		if !query.Has(d.option) {
			d.set(f)
		}
	}
	c := redisConfig{client: f}
	if err := cacheopt.Decode(backend, cfg.Options, &c, append(slices.Clip(redisOptionTable), extra...)); err != nil {
		return c, fmt.Errorf("%w: %w", backends.ErrConfig, err)
	}
	if c.tls.set {
		conf, err := c.tls.config(*f.tlsConfig)
		if err != nil {
			return c, err
		}
		*f.tlsConfig = conf
	}
	if c.goRedisLogger {
		SetLogger(cfg.Logger)
	}
	return c, nil
}

// config builds the TLS configuration the options ask for on top of base
// (from a rediss:// URL, or nil), or returns base when they ask for none.
func (t redisTLS) config(base *tls.Config) (*tls.Config, error) {
	if !t.on && !t.skipVerify && t.serverName == "" && t.caFile == "" && t.certFile == "" && t.keyFile == "" {
		return base, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		conf = base.Clone()
	}
	if t.serverName != "" {
		conf.ServerName = t.serverName
	}
	conf.InsecureSkipVerify = conf.InsecureSkipVerify || t.skipVerify
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_ca_file: %w", backends.ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_ca_file: no PEM certificate in %s", backends.ErrConfig, t.caFile)
		}
		conf.RootCAs = pool
	}
	if (t.certFile == "") != (t.keyFile == "") {
		return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_cert_file and tls_key_file go together (client certificate and its key)", backends.ErrConfig)
	}
	if t.certFile != "" {
		cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_cert_file, tls_key_file: %w", backends.ErrConfig, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
