// Package keys builds cache keys the way Flask-Caching does, so that Go
// code and templates in every engine agree on them byte for byte.
//
// A template's `cache` block stores its fragment under
// MakeTemplateFragmentKey(name, varyOn...), where name is the block's
// explicit name or, when it has none, FragmentName(templatePath, line). App
// code calls the same function to delete a fragment after the data behind it
// changes. SafeKey maps arbitrary keys onto what length- and charset-limited
// stores such as memcached accept, injectively: two different keys never
// share a result.
package keys

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// TemplateFragmentPrefix starts every fragment key, as in Flask-Caching.
const TemplateFragmentPrefix = "_template_fragment_cache_"

// MakeTemplateFragmentKey returns the cache key of a template fragment,
// byte-identical to Flask-Caching's make_template_fragment_key: the prefix,
// the name, and when vary_on values are given, "_" and the values joined by
// "_". Like Flask's, the key is ambiguous when values contain "_"
// (("a", "b_c") and ("a_b", "c") collide); choose names and values
// accordingly.
func MakeTemplateFragmentKey(name string, varyOn ...string) string {
	if len(varyOn) == 0 {
		return TemplateFragmentPrefix + name
	}
	n := len(TemplateFragmentPrefix) + len(name) + len(varyOn)
	for _, v := range varyOn {
		n += len(v)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(TemplateFragmentPrefix)
	b.WriteString(name)
	for _, v := range varyOn {
		b.WriteByte('_')
		b.WriteString(v)
	}
	return b.String()
}

// FragmentName is the name of a fragment that has no explicit name: the
// template's path and the block's line number run together, as Flask forms
// it ("shop/index.html" line 12 → "shop/index.html12"). Engines pass the
// loader-relative, slash-separated path so that keys agree across hosts.
func FragmentName(path string, line int) string {
	return path + strconv.Itoa(line)
}

// MaxSafeKeyLen is memcached's key length limit, which SafeKey respects.
const MaxSafeKeyLen = 250

// safeKeyHashLen is the length of the base64url SHA-256 that SafeKey appends.
const safeKeyHashLen = 43

// SafeKey returns key unchanged when memcached accepts it (1 to 250 bytes,
// none of them a space, a control character or DEL) and it does not look
// like a mapped key. Any other key is mapped deterministically to a
// readable head of the key (unsafe bytes and '#' replaced by '_') followed
// by '#' and the base64url SHA-256 of the whole key, 250 bytes at most.
//
// SafeKey is injective: every mapped key ends in '#' and 43 base64url
// characters, and a key that ends that way is mapped too, even when
// memcached would accept it. So a key passed through unchanged is never
// another key's mapped form, and two mapped keys are equal only if SHA-256
// collides. This matters when part of a key comes from a request (a vary_on
// value with CACHE_KEY_PREFIX=""): no chosen key can address another's
// entry.
func SafeKey(key string) string {
	if IsSafeKey(key) && !looksMapped(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	head := []byte(key)
	if max := MaxSafeKeyLen - 1 - safeKeyHashLen; len(head) > max {
		head = head[:max]
	}
	out := make([]byte, 0, len(head)+1+safeKeyHashLen)
	for _, c := range head {
		if c <= ' ' || c == 0x7f || c == '#' {
			c = '_'
		}
		out = append(out, c)
	}
	out = append(out, '#')
	out = base64.RawURLEncoding.AppendEncode(out, sum[:])
	return string(out)
}

// looksMapped reports whether key ends as SafeKey's mapped keys do: '#'
// and safeKeyHashLen base64url characters.
func looksMapped(key string) bool {
	n := len(key) - safeKeyHashLen
	if n < 1 || key[n-1] != '#' {
		return false
	}
	for i := n; i < len(key); i++ {
		c := key[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// IsSafeKey reports whether memcached accepts key as it is: 1 to 250
// bytes, none of them a space, a control character or DEL. SafeKey also
// maps some keys that IsSafeKey accepts (those that look like a mapped
// key).
func IsSafeKey(key string) bool {
	if len(key) == 0 || len(key) > MaxSafeKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
