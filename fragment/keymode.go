package fragment

import (
	"slices"
	"strconv"
)

// Unambiguous keys (Options.UnambiguousKeys).
//
// Flask's fragment key runs the name and the vary_on values together with
// "_" between them, so it is not injective: name "sidebar" with vary_on
// "admin" and name "sidebar_admin" share a key, and so do vary_on
// ["a_b"] and ["a", "b"]. Where a vary_on value comes from a request, a
// client can pick one that reads, or with a render stores, another block's
// fragment. In the unambiguous form every part is escaped — "%" as "%25",
// "_" as "%5F" — so that "_" only ever separates parts and "%" only ever
// starts an escape. An unnamed block's name is "%:" (which no escaped name
// contains) + path + ":" + line (+ "@" + digest with SourceDigest), with
// ":" in path and digest escaped as "%3A", so that its one bare ":" ends
// the path.

// escapeFrom escapes, in place, the key part b[start:]: "%" and "_" (and
// ":" when colon is set) become "%25", "%5F" and "%3A". It allocates only
// when b has no room for the escapes.
func escapeFrom(b []byte, start int, colon bool) []byte {
	n := 0
	for _, ch := range b[start:] {
		if ch == '%' || ch == '_' || ch == ':' && colon {
			n++
		}
	}
	if n == 0 {
		return b
	}
	end := len(b)
	b = slices.Grow(b, 2*n)[:end+2*n]
	// From the end, so that every byte is read before an escape overwrites
	// it: the write position stays 2 × (escapes still to come) ahead.
	j := len(b)
	for i := end - 1; i >= start; i-- {
		var esc string
		switch ch := b[i]; {
		case ch == '%':
			esc = "%25"
		case ch == '_':
			esc = "%5F"
		case ch == ':' && colon:
			esc = "%3A"
		default:
			j--
			b[j] = ch
			continue
		}
		j -= len(esc)
		copy(b[j:], esc)
	}
	return b
}

// appendUnnamed appends an unnamed block's name for site: Flask's path
// and line run together, or the unambiguous form.
func (c *Cache) appendUnnamed(b []byte, site *Site) ([]byte, error) {
	if c.opts.UnambiguousKeys {
		b = append(b, "%:"...)
		start := len(b)
		b = escapeFrom(append(b, site.Path...), start, true)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(site.Line), 10)
		if c.opts.SourceDigest && site.Digest != "" {
			b = append(b, '@')
			start := len(b)
			b = escapeFrom(append(b, site.Digest...), start, true)
		}
		return b, nil
	}
	if p := site.Path; p != "" && '0' <= p[len(p)-1] && p[len(p)-1] <= '9' {
		return b, ErrAmbiguousName
	}
	b = append(b, site.Path...) // keys.FragmentName, without its allocation
	b = strconv.AppendInt(b, int64(site.Line), 10)
	if c.opts.SourceDigest && site.Digest != "" {
		b = append(b, '@')
		b = append(b, site.Digest...)
	}
	return b, nil
}

// appendPart appends a name or vary_on value, escaped with unambiguous
// keys.
func (c *Cache) appendPart(b []byte, v any) ([]byte, error) {
	start := len(b)
	b, err := AppendKeyValue(b, v)
	if err != nil || !c.opts.UnambiguousKeys {
		return b, err
	}
	return escapeFrom(b, start, false), nil
}
