package otel

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Binaries under test, built once by TestMain from the parent module.
var (
	qpBin  string // ./cmd/queue-proxy
	appBin string // ./test/app
)

// parentModule is the module path of the product.
const parentModule = "github.com/queue-proxy/queue-proxy"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "otel:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "qp-otel-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "otel: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	qpBin = filepath.Join(dir, "queue-proxy")
	appBin = filepath.Join(dir, "app")
	if err := build(root, map[string]string{qpBin: "./cmd/queue-proxy", appBin: "./test/app"}); err != nil {
		fmt.Fprintln(os.Stderr, "otel: building the binaries under test:", err)
		return 1
	}
	return m.Run()
}

// repoRoot is the parent module's directory, two levels up from this
// package; it checks that the go.mod there is the product's.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("reading the parent go.mod: %w", err)
	}
	if !bytes.HasPrefix(b, []byte("module "+parentModule+"\n")) {
		return "", fmt.Errorf("%s/go.mod is not module %s", root, parentModule)
	}
	return root, nil
}

// build runs `go build` in the parent module's directory, so that the
// parent's go.mod (not this module's, which holds the Collector) selects
// every dependency version: the binary is the one that ships. The builds
// run in parallel, without the race detector.
func build(root string, targets map[string]string) error {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(gocmd); serr != nil {
			return errors.New("the go command is neither on PATH nor in GOROOT")
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for out, pkg := range targets {
		wg.Go(func() {
			start := time.Now()
			cmd := exec.Command(gocmd, "build", "-o", out, pkg)
			cmd.Dir = root
			// GOWORK=off: a developer's go.work must not mix this module's
			// requirements into the product's build.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
			b, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("go build %s: %v\n%s", pkg, err, b))
				return
			}
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "otel: built %s in %v\n", pkg, time.Since(start).Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
