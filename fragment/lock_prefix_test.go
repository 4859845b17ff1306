package fragment

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fragcache/fragcache/backends"
)

// TestKeyPrefixCannotMakeLockKeys: lock keys are "fragcache-lock:" + a
// fragment's key, so a Cache whose fragment keys start with
// "fragcache-lock:" would store fragments under another Cache's lock keys
// on the same backend (and take them as locks). New refuses such a
// prefix, whether KeyPrefix or Version makes it; every other prefix gives
// keys starting with "<prefix>_template_fragment_cache_", which never
// starts with "fragcache-lock:" ("_" is not in it).
func TestKeyPrefixCannotMakeLockKeys(t *testing.T) {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	for _, tt := range []struct {
		opts   Options
		refuse bool
	}{
		{Options{KeyPrefix: "fragcache-lock:"}, true},
		{Options{KeyPrefix: "fragcache-lock:site/"}, true},
		{Options{Version: "fragcache-lock"}, true},
		{Options{KeyPrefix: "fragcache-", Version: "lock"}, true},
		{Options{KeyPrefix: "fragcache-"}, false},
		{Options{KeyPrefix: "site/", Version: "fragcache-lock"}, false},
	} {
		build := func() { New(store, tt.opts) }
		if tt.refuse {
			assert.PanicsWithValue(t, `fragment.New: key prefix "`+tt.opts.KeyPrefix+versionPart(tt.opts.Version)+`" would make fragment keys that are lock keys (prefix "fragcache-lock:")`, build, "%+v", tt.opts)
		} else {
			assert.NotPanics(t, build, "%+v", tt.opts)
		}
	}
}

func versionPart(v string) string {
	if v == "" {
		return ""
	}
	return v + ":"
}
