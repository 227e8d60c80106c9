//go:build !linux

package main

import "os/exec"

// setProcAttr does nothing where there is no parent-death signal; the
// benchmark needs Linux (/proc, taskset) anyway.
func setProcAttr(*exec.Cmd) {}
