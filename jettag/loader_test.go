package jettag

import (
	"bytes"
	"testing"

	"github.com/CloudyKit/jet/v6"
	"github.com/stretchr/testify/require"
)

// TestTwoSetsOfOneTagsKeepTheirUnnamedBlocksApart: one Tags serving two
// Sets whose roots both hold /welcome.jet must not give both templates'
// unnamed blocks one key; each would be served the other's fragment.
func TestTwoSetsOfOneTagsKeepTheirUnnamedBlocksApart(t *testing.T) {
	tags := newTags(Options{})
	render := func(set *jet.Set) string {
		tpl, err := set.GetTemplate("/welcome.jet")
		require.NoError(t, err)
		var out bytes.Buffer
		require.NoError(t, tpl.Execute(&out, nil, nil))
		return out.String()
	}
	newSet := func(name, src string) *jet.Set {
		mem := jet.NewInMemLoader()
		mem.Set("/welcome.jet", src)
		set, err := tags.NewSet(name, mem)
		require.NoError(t, err)
		return set
	}
	web := newSet("web", "{{ cache 300 }}web{{ endcache }}")
	mail := newSet("mail", "{{ cache 300 }}mail{{ endcache }}")
	require.Equal(t, "web", render(web))
	require.Equal(t, "mail", render(mail), "the mail set's block was served the web set's fragment")
}

func TestLoaderNames(t *testing.T) {
	tags := newTags(Options{})
	for _, name := range []string{"web", "a.b_c-9", "..."} {
		_, err := tags.Loader(name, jet.NewInMemLoader())
		require.NoError(t, err, name)
	}
	for _, name := range []string{"", ".", "..", "a/b", "a b", "é"} {
		_, err := tags.Loader(name, jet.NewInMemLoader())
		require.ErrorIs(t, err, ErrLoaderName, name)
		_, err = tags.NewSet(name, jet.NewInMemLoader())
		require.ErrorIs(t, err, ErrLoaderName, name)
	}
	_, err := tags.Loader("web", nil)
	require.Error(t, err)
}
