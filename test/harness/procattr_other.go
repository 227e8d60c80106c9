//go:build !linux

package harness

import "os/exec"

// setProcAttr does nothing where the parent-death signal does not exist;
// the tests' cleanups still kill every child.
func setProcAttr(*exec.Cmd) {}
