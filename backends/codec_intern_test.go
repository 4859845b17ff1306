package backends_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/fragcache/fragcache/backends"
)

type internedName struct {
	S string `msgpack:",intern"`
}

// A struct field tagged `msgpack:",intern"` is written once, then referred
// back to by index in an ext payload (type -128): fixext1 for indices up
// to 255, which msgpack reads with ReadByte, not as a whole payload. So a
// reader that refuses every ext payload's first byte to ReadByte breaks
// interned strings; the guard must let that byte through and refuse only a
// bulk Read right after it, which is how the map-behind-an-ext skip would
// go on when the byte is a map16 or map32 header (0xde, 0xdf: indices 222
// and 223, covered here).
func TestMsgpackCodecDecodesInternedStrings(t *testing.T) {
	var in []internedName
	for i := range 2 * 300 {
		in = append(in, internedName{fmt.Sprintf("name %d", i%300)})
	}
	b, err := msgpack.Marshal(in)
	require.NoError(t, err)
	var out []internedName
	require.NoError(t, backends.MsgpackCodec{}.Unmarshal(b, &out))
	assert.Equal(t, in, out)
}
