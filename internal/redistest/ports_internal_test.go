package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestPortsClaimedAcrossProcesses: a port this process handed out is one
// another test process does not take, even once its server is gone, and
// neither it nor its bus port is in the kernel's ephemeral range. The
// other process is this test binary again, run with the port to claim.
func TestPortsClaimedAcrossProcesses(t *testing.T) {
	if other := os.Getenv("REDISTEST_CLAIM_PORT"); other != "" {
		p, err := strconv.Atoi(other)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("claim: %v\n", claim(p))
		return
	}
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if p < portMin || p+busOffset >= 32768 {
		t.Errorf("port %d, bus port %d: want both in [%d, 32768)", p, p+busOffset, portMin)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPortsClaimedAcrossProcesses$")
	cmd.Env = append(os.Environ(), "REDISTEST_CLAIM_PORT="+strconv.Itoa(p))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the other process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "claim: false") {
		t.Errorf("another process could claim port %d, which this one holds:\n%s", p, out)
	}
}
