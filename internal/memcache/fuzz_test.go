package memcache

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/fragcache/fragcache/internal/testkit"
)

// FuzzReadResponse reads any bytes as a stream of responses, as a hostile
// or broken server could send them: never a panic, at most 64 KiB + 64
// bytes per byte received allocated (measured), and error texts that quote
// at most maxMessage bytes of the server's message. Seeds are under
// testdata/fuzz/FuzzReadResponse: real answers, and the cases of issue 12
// item 6 (bodies announced at 256 MiB and 4 GiB with nothing behind them,
// long error messages, memcached's ASCII "too many connections" answer).
func FuzzReadResponse(f *testing.F) {
	f.Add(claim([headerLen]byte{1: opGet}, statusOK, 5, []byte("value")))
	f.Add(claim([headerLen]byte{1: opGet}, statusOK, 256<<20, nil))
	s := &server{addr: "127.0.0.1:11211"}
	f.Fuzz(func(t *testing.T, data []byte) {
		op := byte(opGet)
		if len(data) > 1 {
			op = data[1] // whatever the response claims to answer, to get past that check
		}
		bound := uint64(64<<10 + 64*len(data))
		var texts []string
		r := bufio.NewReader(bytes.NewReader(data)) // the connection's, not the replies'
		n := testkit.Allocated(func() {
			for i := uint32(0); ; i++ {
				resp, err := readResponse(r, op, i, DefaultMaxValueSize)
				if err != nil {
					texts = append(texts, err.Error())
					return
				}
				if resp.status != statusOK {
					texts = append(texts, s.statusError(&request{op: op, key: "k"}, resp).Error())
				}
			}
		})
		if n > bound {
			t.Fatalf("reading %d bytes allocated %d, over %d", len(data), n, bound)
		}
		for _, text := range texts {
			if len(text) > maxMessage+400 {
				t.Fatalf("an error text of %d bytes: %.200q…", len(text), text)
			}
		}
	})
}
