package testservers

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a server that counts the
// connections clients hold through it, for tests of connection caps.
//
// A connection counts from the moment the proxy accepts it until the proxy
// sees it end: the client's close, or the server's, which the proxy passes
// on by closing the client's side. A client that closes a connection and at
// once opens another can therefore be counted with both open for a moment,
// so Max is exact only for clients that do not close and redial during the
// measurement (a pool whose idle limit is at least its cap); otherwise it
// is an upper bound.
type Proxy struct {
	l               net.Listener
	network, target string

	mu               sync.Mutex
	conns            map[net.Conn]struct{}
	open, max, total int
	closed           bool
	wg               sync.WaitGroup
}

// CountingProxy starts a proxy to the server at target ("host:port" for
// network "tcp", a path for "unix"), stopped when the test ends.
func CountingProxy(t testing.TB, network, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testservers: proxy listener: %v", err)
	}
	p := &Proxy{l: l, network: network, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

// Addr is the proxy's address, "127.0.0.1:<port>".
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Max is the most connections that were open through the proxy at once.
func (p *Proxy) Max() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

// Open is how many connections are open through the proxy now.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// Total is how many connections the proxy has accepted.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.open++
		p.total++
		p.max = max(p.max, p.open)
		p.wg.Add(1)
		p.mu.Unlock()
		go p.pipe(c)
	}
}

// pipe copies between client c and a new connection to the server until
// either side ends, then closes both.
func (p *Proxy) pipe(c net.Conn) {
	defer p.wg.Done()
	defer p.forget(c)
	u, err := net.Dial(p.network, p.target)
	if err != nil {
		c.Close()
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(c, u)
		c.Close() // the server closed: so does the client's side
	}()
	_, _ = io.Copy(u, c)
	u.Close()
	c.Close()
}

func (p *Proxy) forget(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.conns[c]; ok {
		delete(p.conns, c)
		p.open--
	}
}

// stop closes the listener and every connection, and waits for the
// proxy's goroutines.
func (p *Proxy) stop() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.l.Close()
	p.wg.Wait()
}
