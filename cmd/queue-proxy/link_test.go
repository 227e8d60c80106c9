package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// methodLookups are the reflect functions that, once linked, make the Go
// linker keep every exported method of every reachable type (dead-method
// elimination is off): text/template's Execute links them and cost the
// binary 1.4 MiB, and as much resident memory in every pod. The request log
// uses pkg/http/logtemplate instead.
var methodLookups = []string{
	"reflect.Value.Method",
	"reflect.Value.MethodByName",
	"reflect.(*rtype).Method",
	"reflect.(*rtype).MethodByName",
}

// TestBinaryKeepsDeadMethodElimination builds the binary and fails if any of
// methodLookups is linked into it.
func TestBinaryKeepsDeadMethodElimination(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "queue-proxy")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	symbols := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			symbols[f[len(f)-1]] = true
		}
	}
	if !symbols["main.main"] {
		t.Fatalf("go tool nm lists no main.main; the check would be meaningless")
	}
	for _, s := range methodLookups {
		if symbols[s] {
			t.Errorf("the binary links %s, which switches off dead-method elimination (+1.4 MiB)", s)
		}
	}
}
