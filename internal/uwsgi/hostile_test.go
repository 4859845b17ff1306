package uwsgi

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/testkit"
)

// TestHostileReplies has a server announce more than it sends, or send
// long texts, and checks that the client's memory follows the bytes that
// arrived and its errors stay short.
func TestHostileReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply []byte
		want  error
	}{
		{"value announced as 1 GiB, 10 bytes sent",
			append(encodeReply("status", "ok", "size", "1073741824"), "0123456789"...), ErrProtocol},
		{"value announced as 2 GiB - 1, nothing sent",
			encodeReply("status", "ok", "size", "2147483647"), ErrProtocol},
		{"vars announced as 64 KiB, 3 bytes sent", []byte{111, 0xff, 0xff, 17, 1, 0, 'a'}, ErrProtocol},
		{"status of 60 KiB", encodeReply("status", strings.Repeat("s", 60<<10)), ErrNoReply},
		{"size of 60 KiB", encodeReply("status", "ok", "size", strings.Repeat("9", 60<<10)), ErrProtocol},
		{"expires of 60 KiB", encodeReply("status", "ok", "size", "0", "expires", strings.Repeat("x", 60<<10)), ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tcpListener(t)
			fakeServer(t, l, func(conn net.Conn) {
				_, _, _ = readRequest(conn)
				_, _ = conn.Write(tc.reply)
			})
			c := &Client{Addr: l.Addr().String(), Timeout: 10 * time.Second, MaxValueSize: 1<<31 - 1}
			var err error
			alloc := testkit.Allocated(func() { _, _, err = c.Get(t.Context(), "k") })
			require.ErrorIs(t, err, tc.want)
			assert.Less(t, len(err.Error()), 400, "the error quotes at most a little of the reply")
			assert.Less(t, alloc, uint64(1<<20), "bytes allocated")
		})
	}
}

// fuzzValueLimit is the MaxValueSize of FuzzReplies.
const fuzzValueLimit = 1 << 20

// FuzzReplies reads arbitrary bytes as a server's reply to get and to the
// other commands: no panic, and no more allocated than 128 KiB (a vars
// block and a value's first step) plus 64 bytes per byte of the reply.
func FuzzReplies(f *testing.F) {
	f.Add(append(encodeReply("status", "ok", "size", "5", "expires", "7"), "hello"...))
	f.Add(encodeReply("status", "ok"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Client{MaxValueSize: fuzzValueLimit}
		for _, wantValue := range []bool{true, false} {
			var r reply
			var err error
			alloc := testkit.Allocated(func() { r, err = c.readReply(bytes.NewReader(data), wantValue) })
			if bound := uint64(128<<10 + 64*len(data)); alloc > bound {
				t.Fatalf("%d bytes of reply allocated %d bytes (bound %d)", len(data), alloc, bound)
			}
			if err == nil && wantValue && len(r.value) > fuzzValueLimit {
				t.Fatalf("a value of %d bytes passed the %d-byte limit", len(r.value), fuzzValueLimit)
			}
			if err != nil && len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
		}
	})
}
