package redistest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// Redis Cluster nodes also listen on port+busOffset for the cluster bus, so a
// port is handed out only when both it and its bus port are free. Both stay
// below the kernel's ephemeral range (32768 and up on Linux), from which
// every outgoing connection and every listener on port 0 (the proxies)
// takes its port: a port handed out here is never one another socket was
// given meanwhile, nor the reverse.
const (
	busOffset = 10000
	portMin   = 20000
	portMax   = 32768 - busOffset
)

// handedOut remembers the ports this process already chose, so two servers
// started at the same moment never pick the same one, and held keeps the
// files that claim them from other processes (claim). A port is never
// handed out twice while the process runs.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
	held      []*os.File
)

// freePort returns a loopback port that is free, as is its cluster bus port.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p := portMin + rand.IntN(portMax-portMin)
		if handedOut[p] || handedOut[p+busOffset] || !canListen(p) || !canListen(p+busOffset) || !claim(p) {
			continue
		}
		handedOut[p], handedOut[p+busOffset] = true, true
		return p, nil
	}
	return 0, fmt.Errorf("redistest: no free loopback port pair (p, p+%d) found in [%d, %d)", busOffset, portMin, portMax)
}

// claim takes port (and with it its bus port) for this process until it
// exits: an exclusive flock on a file named after the port, in a directory
// every test process shares. Test binaries of other packages run at the
// same time; one skips a port another still holds, even after its server
// was stopped or killed. Without it, a cluster node one test killed could
// be replaced at its address by another test's node, and the killed node's
// cluster would go on talking to a stranger where it expects the node to be
// gone. The kernel drops the lock when the process ends, however it ends.
func claim(port int) bool {
	dir := filepath.Join(os.TempDir(), "redistest-ports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return true // no shared directory: the bind's own retry is left
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false // another process holds it
	}
	held = append(held, f) // open, and so locked, until the process exits
	return true
}

func canListen(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
