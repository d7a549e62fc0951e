package sessionkit_test

import (
	"os"
	"testing"

	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// backends are the deployments the Manager's tests run on, each test on its
// own key prefix: a standalone server and a three-master Cluster.
var backends []sessiontest.Backend

// redisAddr is the standalone server, for the examples (any Redis 7 will do).
var redisAddr string

func TestMain(m *testing.M) {
	os.Exit(sessiontest.RunWithBackends(m, func(b []sessiontest.Backend) {
		backends = b
		redisAddr = b[0].Addrs[0]
	}))
}
