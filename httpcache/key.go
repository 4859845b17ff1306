package httpcache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The default key of a request is
//
//	KeyPrefix scheme "://" host path ["?" query] [" fwd:" fields]
//
// and the key of one variant of a response with a Vary header is that key
// followed by " vary:" marker-id " " fields. scheme is http or https; host
// is lower-cased, without the scheme's default port, and made of the
// characters RFC 3986 allows in a host (so no "/", "?" or space); path is
// the escaped path, which never holds "?" or a space; query is
// url.Values.Encode of the parsed query: names sorted, each name's values
// in their order, every byte that could be taken for a separator escaped.
// fields is url.Values.Encode of request header values by lower-case
// name, which holds no space either. So each part ends where the next
// begins and the key can be read back into its parts: two requests whose
// handlers can tell them apart by scheme, host, r.URL.Path, r.URL.Query()
// or the headers in the key never share one (key_test.go parses keys back
// and fuzzes the property).

// errNoHost is the key error of a request that names no usable host.
var errNoHost = errors.New("no valid host")

// riskyHeaders are request headers that frameworks and proxies are known
// to take the request's host, scheme, path or method from. When a request
// carries one, the key holds its values, so a request that sets one
// (X-Forwarded-Host: evil.example) can only fill an entry that requests
// with the same value read. With Options.TrustForwarded, the first four
// give the key's scheme and host instead.
//
// The list cannot be complete: any framework, middleware or handler may
// take what it likes from any header. It holds those that common ones are
// known to read or set (labstack/echo's Context.Scheme and its copies read
// X-Forwarded-Protocol, X-Forwarded-Ssl and X-Url-Scheme after
// X-Forwarded-Proto; Rack X-Forwarded-Ssl and -Scheme; Tornado X-Scheme;
// Symfony X-Forwarded-Prefix; Microsoft's proxies send Front-End-Https and
// X-Original-Host, -Proto and -Url; Traefik X-Forwarded-Uri), and
// Options.KeyHeaders adds an application's own.
var riskyHeaders = []string{
	"Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
	"X-Forwarded-Scheme", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Host",
	"X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Forwarded-Protocol", "X-Forwarded-Ssl", "X-Url-Scheme", "X-Scheme", "Front-End-Https",
	"X-Forwarded-Uri", "X-Forwarded-Path", "X-Original-Uri", "X-Original-Host", "X-Original-Proto",
	"X-Http-Host-Override",
}

// keyedHeaders returns the request headers whose values go into the
// default key, for untrusted and trusted requests: riskyHeaders (less the
// four that give a trusted request's scheme and host) and extra, by
// canonical name, each once. It panics on a name that is not a token, as
// New does for a programming error.
func keyedHeaders(extra []string) (untrusted, trusted []string) {
	untrusted, trusted = slices.Clone(riskyHeaders), slices.Clone(riskyHeaders[4:])
	for _, name := range extra {
		if !validFieldName(name) {
			panic(fmt.Sprintf("httpcache: KeyHeaders: %q is not a header field name", name))
		}
		name = http.CanonicalHeaderKey(name)
		if !slices.Contains(untrusted, name) {
			untrusted = append(untrusted, name)
		}
		if !slices.Contains(trusted, name) {
			trusted = append(trusted, name)
		}
	}
	return untrusted, trusted
}

// defaultKey builds the default key of r.
func (c *Cache) defaultKey(r *http.Request) (string, error) {
	trusted := c.opts.TrustForwarded != nil && c.opts.TrustForwarded(r)
	scheme, host, err := origin(r, trusted)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(c.opts.KeyPrefix) + len(scheme) + 3 + len(host) + len(r.URL.Path) + 1 + len(r.URL.RawQuery))
	b.WriteString(c.opts.KeyPrefix)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	b.WriteString(r.URL.EscapedPath())
	if !c.opts.IgnoreQuery && r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			// A handler might read the malformed pairs url.Query
			// drops, so two such URLs may not share a response.
			return "", fmt.Errorf("query of %s: %w", r.URL.Path, err)
		}
		if len(q) > 0 {
			b.WriteByte('?')
			b.WriteString(q.Encode())
		}
	}
	names := c.keyed
	if trusted {
		names = c.keyedTrusted
	}
	if f := headerFields(r.Header, names); f != "" {
		b.WriteString(" fwd:")
		b.WriteString(f)
	}
	return b.String(), nil
}

// headerFields encodes the values r carries of the named request headers,
// by lower-case name; "" when it carries none. names are canonical, and
// looked up as handlers read them with Header.Get.
func headerFields(h http.Header, names []string) string {
	var q url.Values
	for _, name := range names {
		vs, ok := h[name]
		if !ok {
			continue
		}
		if q == nil {
			q = url.Values{}
		}
		// An empty list is a header sent with no line, which no handler
		// can tell from an absent one.
		if len(vs) > 0 {
			q[strings.ToLower(name)] = vs
		}
	}
	return q.Encode()
}

// variantKey is the key of the variant of the response stored under key
// that r selects, given the marker naming the response's Vary headers.
func variantKey(key string, m *marker, r *http.Request) string {
	var q url.Values
	for _, name := range m.names {
		if vs := r.Header.Values(name); len(vs) > 0 {
			if q == nil {
				q = url.Values{}
			}
			q[name] = vs
		}
	}
	return key + " vary:" + hex.EncodeToString([]byte(m.id)) + " " + q.Encode()
}

// origin returns the scheme and normalised host r was sent to: from the
// connection and the Host header, or, from a trusted proxy, from the
// Forwarded, X-Forwarded-Host, X-Forwarded-Proto and X-Forwarded-Port
// headers it sets.
func origin(r *http.Request, trusted bool) (scheme, host string, err error) {
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if host == "" {
		host = r.URL.Host
	}
	if !trusted {
		host, err = normalHost(host, scheme)
		return scheme, host, err
	}
	return forwardedOrigin(r.Header, scheme, host)
}

// forwardedOrigin returns the scheme and normalised host a trusted proxy
// forwarded: Forwarded's proto and host parameters (RFC 7239),
// X-Forwarded-Proto and X-Forwarded-Host, and X-Forwarded-Port, the port
// of a host named without one; scheme and host stand for what they do not
// name.
//
// Every value must name the same scheme and the same host, or the request
// gets no key. Handlers differ in what they read (gorilla/handlers'
// ProxyHeaders takes X-Forwarded-Host, others Forwarded, some add
// X-Forwarded-Port to the host), and a proxy trusted to set some of these
// headers may pass the others on as the client sent them: nginx's usual
// proxy_set_header lines set X-Forwarded-Host and -Proto and pass a
// client's Forwarded through. Preferring one header would let a client
// name the host the key says in the header the handler does not read. For
// the same reason a header that holds more than one distinct value (a
// proxy that appends passes on what the client sent) gives no key.
func forwardedOrigin(h http.Header, scheme, host string) (string, string, error) {
	var protos, hosts []string
	for _, line := range h.Values("Forwarded") {
		for _, elem := range splitQuoted(line, ',') {
			for _, pair := range splitQuoted(elem, ';') {
				k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
				v = unquote(strings.TrimSpace(v))
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "proto":
					protos = append(protos, v)
				case "host":
					hosts = append(hosts, v)
				}
			}
		}
	}
	protos = append(protos, listValues(h.Values("X-Forwarded-Proto"))...)
	hosts = append(hosts, listValues(h.Values("X-Forwarded-Host"))...)
	for i := range protos {
		protos[i] = strings.ToLower(protos[i])
	}
	proto, err := single("protocols", protos)
	if err != nil {
		return "", "", err
	}
	switch proto {
	case "":
	case "http", "https":
		scheme = proto
	default:
		return "", "", fmt.Errorf("forwarded protocol %q", proto)
	}
	port, err := single("ports", listValues(h.Values("X-Forwarded-Port")))
	if err != nil {
		return "", "", err
	}
	if len(hosts) == 0 {
		hosts = []string{host}
	}
	// Compared normalised: shop.example:443 and Shop.Example name one
	// https host, and links made from either lead to it.
	for i, v := range hosts {
		if port != "" {
			if !hasPort(v) {
				v += ":" + port
			} else if v[strings.LastIndexByte(v, ':')+1:] != port {
				return "", "", fmt.Errorf("forwarded host %q and port %q disagree", v, port)
			}
		}
		if hosts[i], err = normalHost(v, scheme); err != nil {
			return "", "", err
		}
	}
	host, err = single("hosts", hosts)
	return scheme, host, err
}

// single returns the one distinct value of vs, "" for none.
func single(what string, vs []string) (string, error) {
	if vs = slices.Compact(slices.Sorted(slices.Values(vs))); len(vs) > 1 {
		return "", fmt.Errorf("forwarded %s %q disagree", what, vs)
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// hasPort reports whether host names a port.
func hasPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	return i >= 0 && i > strings.LastIndexByte(host, ']')
}

// listValues splits comma-separated header lines into trimmed elements.
func listValues(lines []string) []string {
	var out []string
	for _, line := range lines {
		for v := range strings.SplitSeq(line, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := range len(s) {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote returns the content of a quoted-string, or s if it is a token.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// normalHost lower-cases host and drops scheme's default port. A host
// holding anything but what RFC 3986 allows in a host and a port is an
// error wrapping errNoHost: such a request bypasses the cache.
func normalHost(host, scheme string) (string, error) {
	name, port := host, ""
	if strings.HasPrefix(host, "[") { // an IP literal
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", fmt.Errorf("%w: %q", errNoHost, host)
		}
		name, port = host[:end+1], host[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", fmt.Errorf("%w: %q", errNoHost, host)
			}
			port = port[1:]
		}
		if !allBytes(name[1:end], isIPLiteralChar) {
			return "", fmt.Errorf("%w: %q", errNoHost, host)
		}
	} else {
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			name, port = host[:i], host[i+1:]
		}
		if !allBytes(name, isRegNameChar) {
			return "", fmt.Errorf("%w: %q", errNoHost, host)
		}
	}
	if name == "" || len(port) > 5 || !allBytes(port, func(c byte) bool { return c >= '0' && c <= '9' }) {
		return "", fmt.Errorf("%w: %q", errNoHost, host)
	}
	name = strings.ToLower(name)
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return name, nil
	}
	return name + ":" + port, nil
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// isRegNameChar: unreserved, pct-encoded and sub-delims (RFC 3986 §3.2.2).
func isRegNameChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		strings.IndexByte("-._~%!$&'()*+,;=", c) >= 0
}

// isIPLiteralChar: what an IPv6 address, an IPvFuture or a zone holds.
func isIPLiteralChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		strings.IndexByte(":.-_~%!$&'()*+,;=", c) >= 0
}
