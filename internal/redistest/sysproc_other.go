//go:build unix && !linux

package redistest

import "syscall"

// procAttr puts redis-server in its own process group, so Kill reaches any
// child it forked. Outside Linux there is no parent-death signal: a test
// binary that crashes may leave servers behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
