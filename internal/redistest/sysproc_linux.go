package redistest

import "syscall"

// procAttr puts redis-server in its own process group, so Kill reaches any
// child it forked (BGSAVE, AOF rewrite), and has the kernel kill it when the
// test binary dies, so no server outlives a crashed or timed-out test run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
