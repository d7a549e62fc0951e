package store_test

import (
	"os"
	"testing"

	"github.com/sessionkit/sessionkit/internal/sessiontest"
)

// backends are the Redis deployments the store's tests run on, each test
// on its own key prefix: a standalone server and a three-master Cluster,
// started once for the package.
var backends []sessiontest.Backend

func TestMain(m *testing.M) {
	os.Exit(sessiontest.RunWithBackends(m, func(b []sessiontest.Backend) { backends = b }))
}
