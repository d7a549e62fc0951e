// Package faulttest holds sessionkit's reliability and security suites:
// fault injection against real redis-server processes (a killed and
// restarted server, a flushed script cache, a server slower than the
// request deadline, an out-of-memory server, a deleted or damaged index,
// Cluster failover and slot migration, Sentinel failover under HTTP load),
// the audit's hardening cases, a load test whose invariants are checked
// against Redis directly (also over the verified-session cache, with a
// second cached instance that must stop serving a revoked session within
// seconds), fuzz targets for the commands, and a test per
// security promise of ARCHITECTURE.md.
//
// The package has no API: everything is in its _test.go files, which run
// with `go test ./...` (and so `make test`). The long soak runs with
// `make soak`; the fuzz targets run briefly in `make test` and for longer
// with `make fuzz`.
package faulttest
