package harness

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

// ModulePath is the module path of the product.
const ModulePath = "github.com/queue-proxy/queue-proxy"

// Binaries are the paths of the programs under test.
type Binaries struct {
	QueueProxy string // ./cmd/queue-proxy
	App        string // ./test/app, the demo user container
}

// Main is the body of a TestMain: it builds the binaries under test from the
// product module at root into a temporary directory, stores their paths in
// bins, runs the tests and removes the directory. It returns the exit code
// for os.Exit. name prefixes its messages.
func Main(m *testing.M, name, root string, bins *Binaries) int {
	flag.Parse()
	root, err := RepoRoot(root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "qp-"+name+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: temp dir: %v\n", name, err)
		return 1
	}
	defer os.RemoveAll(dir)
	b := Binaries{QueueProxy: filepath.Join(dir, "queue-proxy"), App: filepath.Join(dir, "app")}
	targets := map[string]string{b.QueueProxy: "./cmd/queue-proxy", b.App: "./test/app"}
	if err := build(name, root, targets); err != nil {
		fmt.Fprintf(os.Stderr, "%s: building the binaries under test: %v\n", name, err)
		return 1
	}
	*bins = b
	return m.Run()
}

// RepoRoot returns dir as an absolute path after checking that its go.mod
// is the product's.
func RepoRoot(dir string) (string, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("reading the product's go.mod: %w", err)
	}
	if !bytes.HasPrefix(b, []byte("module "+ModulePath+"\n")) {
		return "", fmt.Errorf("%s/go.mod is not module %s", root, ModulePath)
	}
	return root, nil
}

// goTool finds the go command: on PATH, else in the GOROOT this test was
// built with.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", errors.New("the go command is neither on PATH nor in GOROOT")
	}
	return p, nil
}

// build runs `go build` for each package (value) into its output path (key)
// in the product's directory root, so that its go.mod (not that of a test
// module such as test/otel) selects every dependency version: the binary is
// the one that ships. GOWORK=off keeps a developer's go.work out of it too.
// The builds run in parallel, without the race detector: the processes
// under test run as they would in production.
func build(name, root string, targets map[string]string) error {
	gocmd, err := goTool()
	if err != nil {
		return err
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
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
			b, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("go build %s: %v\n%s", pkg, err, b))
				return
			}
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "%s: built %s in %v\n", name, pkg, time.Since(start).Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
