package redistest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Redis Cluster nodes also listen on port+busOffset for the cluster bus, so a
// port is handed out only when both it and its bus port are free. The range
// keeps both below 65536 and away from the usual low service ports.
const (
	busOffset = 10000
	portMin   = 20000
	portMax   = 50000
)

// handedOut remembers the ports this process already chose, so two servers
// started at the same moment never pick the same one. Other processes (other
// test binaries running in parallel) are covered by the retry in StartServer.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// freePort returns a loopback port that is free, as is its cluster bus port.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p := portMin + rand.IntN(portMax-portMin)
		if handedOut[p] || handedOut[p+busOffset] || !canListen(p) || !canListen(p+busOffset) {
			continue
		}
		handedOut[p], handedOut[p+busOffset] = true, true
		return p, nil
	}
	return 0, fmt.Errorf("redistest: no free loopback port pair (p, p+%d) found in [%d, %d)", busOffset, portMin, portMax)
}

func canListen(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
