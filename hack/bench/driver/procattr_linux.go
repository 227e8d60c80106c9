package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill the child if the driver dies, so that no
// server outlives an interrupted benchmark.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
