package redistest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a loopback TCP proxy that adds latency, for timeout tests. Each
// chunk read from either side is written to the other side the current
// delay after it was read, so the delay acts like network latency: it
// postpones data without limiting throughput. It can also lose a reply
// (DropNextReply).
type Proxy struct {
	target  atomic.Pointer[string]
	ln      net.Listener
	delay   atomic.Int64 // time.Duration
	marker  atomic.Pointer[[]byte]
	dropped atomic.Int64
	closed  chan struct{}
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// NewProxy starts a proxy on a free loopback port that forwards every
// connection to target. It is closed when the test finishes.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, closed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.target.Store(&target)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(func() { p.Close() })
	return p
}

// setTarget makes the proxy forward the connections it accepts from now on
// to target: a cluster node's bus proxy listens before the node has a
// port.
func (p *Proxy) setTarget(target string) { p.target.Store(&target) }

// Addr returns the address clients connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay sets the delay applied, from now on, to every chunk forwarded in
// either direction; 0 forwards at once. Chunks already waiting keep the
// delay they were read with.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// DropNextReply arms the proxy to lose one reply: the next request whose
// bytes contain marker (lower case; compared with the request in lower
// case) reaches the server, and the connection it came on is closed
// instead of carrying the server's reply, as a connection lost at that
// moment is. The server has run the command; the client sees its
// connection end after sending it (go-redis then sends it again).
func (p *Proxy) DropNextReply(marker string) {
	m := []byte(marker)
	p.marker.Store(&m)
}

// Dropped reports how many replies the proxy has lost (DropNextReply).
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

// Close stops accepting, closes every proxied connection and waits for the
// proxy's goroutines to finish. It is idempotent.
func (p *Proxy) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
	}
	close(p.closed)
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.DialTimeout("tcp", *p.target.Load(), 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		p.wg.Add(2)
		drop := new(atomic.Bool) // the server's next reply on this pair is lost
		go p.pipe(client, server, drop, true)
		go p.pipe(server, client, drop, false)
	}
}

// track registers a connection pair, or closes it if the proxy is closed.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		for _, c := range conns {
			c.Close()
		}
		return false
	default:
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk delayed. When either side fails or
// ends, both connections are closed, which ends the opposite pipe too.
// toServer is the client's side; drop is shared by the two pipes of a
// pair: set on a request DropNextReply armed for, it ends the pair in
// place of the reply.
func (p *Proxy) pipe(src, dst net.Conn, drop *atomic.Bool, toServer bool) {
	defer p.wg.Done()
	defer p.untrack(src, dst)
	queue := make(chan chunk, 256)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 && toServer {
				if m := p.marker.Load(); m != nil && bytes.Contains(bytes.ToLower(buf[:n]), *m) && p.marker.CompareAndSwap(m, nil) {
					drop.Store(true)
				}
			}
			if n > 0 {
				queue <- chunk{buf[:n], time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range queue {
		if wait := time.Until(c.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.closed:
				t.Stop()
				drain(queue, src)
				return
			}
		}
		if !toServer && drop.Load() {
			p.dropped.Add(1)
			drain(queue, src)
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			drain(queue, src)
			return
		}
	}
}

// drain closes src, so the reader goroutine stops, and empties the queue
// it may be blocked on.
func drain(queue <-chan chunk, src net.Conn) {
	src.Close()
	for range queue {
	}
}
