package bench

import (
	"io"
	"net"
	"sync"
	"testing"
)

// cutProxy forwards TCP connections to a server, until cut: then it forwards nothing either way,
// not even a close, and holds new connections without reaching the server, which is what a
// network partition looks like to both ends (no answer, no reset: the server keeps a session
// whose client went away). Healing closes every connection it holds, as a partition long enough
// ends them, and forwards again.
type cutProxy struct {
	ln   net.Listener
	dial func() (net.Conn, error)

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

// newCutProxy listens on a loopback port and forwards to what dial reaches, until the test ends.
func newCutProxy(tb testing.TB, dial func() (net.Conn, error)) *cutProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &cutProxy{ln: ln, dial: dial, conns: map[net.Conn]bool{}}
	tb.Cleanup(func() { ln.Close(); p.closeAll() })
	go p.serve()
	return p
}

// addr is where clients connect.
func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = true
	return p.cut
}

func (p *cutProxy) handle(c net.Conn) {
	if p.track(c) {
		io.Copy(io.Discard, c) // held until healed
		return
	}
	s, err := p.dial()
	if err != nil {
		c.Close()
		return
	}
	p.track(s)
	go p.pipe(s, c)
	p.pipe(c, s)
}

// pipe copies from src to dst while the proxy is not cut, and drops what src sends meanwhile.
func (p *cutProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.isCut() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !p.isCut() {
				dst.Close() // else the close is lost too: healing closes dst
			}
			return
		}
	}
}

func (p *cutProxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// setCut cuts the proxy off, or heals it.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	was := p.cut
	p.cut = cut
	p.mu.Unlock()
	if was && !cut {
		p.closeAll()
	}
}

func (p *cutProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}
