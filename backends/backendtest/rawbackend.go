package backendtest

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// rawValues are stored bytes a backend must not alter, trim or interpret.
var rawValues = []struct {
	name  string
	value []byte
}{
	{"empty", []byte{}},
	{"NUL bytes", []byte{0, 0, 0}},
	{"high bytes", []byte{0xff, 0x80, 0xfe}},
	{"a leading !", []byte("!x")},
	{"decimal text", []byte("-12")},
	{"line breaks and spaces", []byte(" a\r\nb c\r\n")},
	{"a memcached END line", []byte("\r\nEND\r\n")},
}

func (s *suite) testBackend(t *testing.T) {
	for _, rv := range rawValues {
		t.Run("stored bytes come back verbatim: "+rv.name, func(t *testing.T) {
			e := s.env(t)
			require.NoError(t, e.b.Set(e.ctx, "set", bytes.Clone(rv.value), backends.NoExpiry))
			require.NoError(t, e.b.SetMany(e.ctx, map[string][]byte{"setmany": bytes.Clone(rv.value)}, backends.NoExpiry))
			added, err := e.b.Add(e.ctx, "add", bytes.Clone(rv.value), backends.NoExpiry)
			require.NoError(t, err)
			require.True(t, added)
			keys := []string{"set", "setmany", "add"}
			for _, k := range keys {
				got, found, err := e.b.Get(e.ctx, k)
				require.NoError(t, err)
				require.True(t, found, "Get(%q)", k)
				require.NotNil(t, got, "Get(%q): a found value is never nil", k)
				requireBytes(t, rv.value, got, "Get("+k+")")
			}
			many, err := e.b.GetMany(e.ctx, keys)
			require.NoError(t, err)
			require.Len(t, many, len(keys))
			for i, got := range many {
				require.NotNil(t, got, "GetMany()[%d]: a found value is never nil", i)
				requireBytes(t, rv.value, got, "GetMany()["+keys[i]+"]")
			}
		})
	}

	notDecimal := [][]byte{
		[]byte(""), []byte("abc"), []byte("1.5"), []byte("12abc"), []byte(" 12"),
		[]byte("99999999999999999999"), []byte("s12"), []byte("!\x01"),
	}
	rules := []rule{
		{"GetMany returns one slice per key in order, nil for each miss", func(t *testing.T, e *env) {
			require.NoError(t, e.b.Set(e.ctx, "a", []byte("A"), backends.NoExpiry))
			require.NoError(t, e.b.Set(e.ctx, "b", []byte("B"), backends.NoExpiry))
			got, err := e.b.GetMany(e.ctx, []string{"x", "b", "a", "y", "a"})
			require.NoError(t, err)
			assert.Equal(t, [][]byte{nil, []byte("B"), []byte("A"), nil, []byte("A")}, got)
		}},
		{"GetMany of no keys returns no slices", func(t *testing.T, e *env) {
			got, err := e.b.GetMany(e.ctx, nil)
			require.NoError(t, err)
			assert.Empty(t, got)
		}},
		{"an empty value is a live entry for Has, Add and Delete", func(t *testing.T, e *env) {
			require.NoError(t, e.b.Set(e.ctx, "k", []byte{}, backends.NoExpiry))
			has, err := e.b.Has(e.ctx, "k")
			require.NoError(t, err)
			assert.True(t, has, "Has")
			added, err := e.b.Add(e.ctx, "k", []byte("x"), backends.NoExpiry)
			require.NoError(t, err)
			assert.False(t, added, "Add")
			deleted, err := e.b.Delete(e.ctx, "k")
			require.NoError(t, err)
			assert.True(t, deleted, "Delete")
		}},
		{"Inc stores its result as decimal text", func(t *testing.T, e *env) {
			for _, step := range []struct {
				delta int64
				want  string
			}{{-42, "-42"}, {50, "8"}, {0, "8"}} {
				_, err := e.b.Inc(e.ctx, "k", step.delta, backends.NoExpiry)
				require.NoError(t, err)
				raw, found, err := e.b.Get(e.ctx, "k")
				require.NoError(t, err)
				require.True(t, found)
				assert.Equal(t, step.want, string(raw))
			}
		}},
		{"Inc of bytes that are not a decimal int64 is ErrNotInteger and leaves them", func(t *testing.T, e *env) {
			for _, v := range notDecimal {
				require.NoError(t, e.b.Set(e.ctx, "k", bytes.Clone(v), backends.NoExpiry))
				_, err := e.b.Inc(e.ctx, "k", 1, backends.NoExpiry)
				require.ErrorIs(t, err, backends.ErrNotInteger, "Inc of %q", v)
				raw, found, err := e.b.Get(e.ctx, "k")
				require.NoError(t, err)
				require.True(t, found)
				assert.Equal(t, v, raw, "value after a failed Inc")
			}
		}},
		{"Clear of a prefix removes exactly the keys that start with it", func(t *testing.T, e *env) {
			all := []string{"p:", "p:a", "p:b:c", "p", "pa", "q:p:a", "", "P:a"}
			for _, k := range all {
				require.NoError(t, e.b.Set(e.ctx, k, []byte(k), backends.NoExpiry))
			}
			require.NoError(t, e.b.Clear(e.ctx, "p:"))
			for _, k := range all {
				has, err := e.b.Has(e.ctx, k)
				require.NoError(t, err)
				assert.Equal(t, !bytes.HasPrefix([]byte(k), []byte("p:")), has, "Has(%q) after Clear(%q)", k, "p:")
			}
		}},
		{"SetMany of no items and DeleteMany of no keys succeed", func(t *testing.T, e *env) {
			require.NoError(t, e.b.SetMany(e.ctx, map[string][]byte{}, backends.NoExpiry))
			n, err := e.b.DeleteMany(e.ctx, nil)
			require.NoError(t, err)
			assert.Equal(t, 0, n)
		}},
	}
	s.runRules(t, rules)
}

func (s *suite) testClose(t *testing.T) {
	// One backend for all rows: it is closed once, here, rather than by
	// the cleanup of s.env, since a second Close is not part of the
	// contract.
	b := s.newBackend(t)
	require.NotNil(t, b, "newBackend returned nil")
	ctx := t.Context()
	require.NoError(t, b.Clear(ctx, ""))
	require.NoError(t, b.Set(ctx, "k", []byte("v"), backends.NoExpiry))
	require.NoError(t, b.Close(), "Close")
	ops := []struct {
		name string
		op   func() error
	}{
		{"Get", func() error { _, _, err := b.Get(ctx, "k"); return err }},
		{"GetMany", func() error { _, err := b.GetMany(ctx, []string{"k"}); return err }},
		{"Set", func() error { return b.Set(ctx, "k", []byte("v"), backends.NoExpiry) }},
		{"SetMany", func() error { return b.SetMany(ctx, map[string][]byte{"k": []byte("v")}, backends.NoExpiry) }},
		{"Add", func() error { _, err := b.Add(ctx, "new", []byte("v"), backends.NoExpiry); return err }},
		{"Delete", func() error { _, err := b.Delete(ctx, "k"); return err }},
		{"DeleteMany", func() error { _, err := b.DeleteMany(ctx, []string{"k"}); return err }},
		{"Has", func() error { _, err := b.Has(ctx, "k"); return err }},
		{"Inc", func() error { _, err := b.Inc(ctx, "n", 1, backends.NoExpiry); return err }},
		{"Clear", func() error { return b.Clear(ctx, "") }},
	}
	for _, o := range ops {
		t.Run(o.name+" after Close returns ErrClosed", func(t *testing.T) {
			assert.ErrorIs(t, o.op(), backends.ErrClosed)
		})
	}
}
