package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// bannedPrefixes are import paths that must never reach the binary: they cost
// megabytes of binary and RSS in every pod (DESIGN.md, "Dependencies").
var bannedPrefixes = []string{
	"k8s.io/client-go",
	"k8s.io/api/",
	"google.golang.org/grpc",
	"knative.dev/pkg/metrics",
	"knative.dev/pkg/logging", // except logging/logkey, allowed below
	"knative.dev/pkg/tracing",
	"knative.dev/pkg/profiling",
	"github.com/prometheus/client_golang",
	// A second HTTP/2 implementation (+0.36 MiB): net/http's serves h2c,
	// with pkg/http/h2c for the upgrade handshake.
	"golang.org/x/net/http2",
}

var allowed = map[string]bool{"knative.dev/pkg/logging/logkey": true}

func banned(path string) bool {
	if allowed[path] {
		return false
	}
	for _, p := range bannedPrefixes {
		if strings.HasPrefix(path, p) || path+"/" == p {
			return true
		}
	}
	return false
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// TestBinaryDependencies fails when cmd/queue-proxy depends on a banned
// package, printing the import chain that brings it in.
func TestBinaryDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		imports[p.ImportPath] = p.Imports
	}
	if len(imports) < 10 {
		t.Fatalf("go list found only %d packages; the check would be meaningless", len(imports))
	}
	const root = "github.com/queue-proxy/queue-proxy/cmd/queue-proxy"
	if _, ok := imports[root]; !ok {
		t.Fatalf("go list output lacks %s", root)
	}
	for pkg := range imports {
		if banned(pkg) {
			t.Errorf("the binary depends on %s via %s", pkg, strings.Join(chain(imports, root, pkg), " -> "))
		}
	}
}

// chain finds an import path from root to target (breadth first).
func chain(imports map[string][]string, root, target string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == target {
			var path []string
			for p := cur; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, next := range imports[cur] {
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return []string{root, "?", target}
}

func TestBannedMatcher(t *testing.T) {
	for path, want := range map[string]bool{
		"k8s.io/client-go/kubernetes":                   true,
		"k8s.io/api/core/v1":                            true,
		"k8s.io/apimachinery/pkg/types":                 false,
		"google.golang.org/grpc":                        true,
		"google.golang.org/grpc/health":                 true,
		"google.golang.org/protobuf/encoding/protowire": false,
		"knative.dev/pkg/logging":                       true,
		"knative.dev/pkg/logging/logkey":                false,
		"knative.dev/pkg/network":                       false,
		"golang.org/x/net/http2/h2c":                    true,
		"golang.org/x/net/http/httpguts":                false,
	} {
		if got := banned(path); got != want {
			t.Errorf("banned(%q) = %v, want %v", path, got, want)
		}
	}
}
