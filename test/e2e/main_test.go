package e2e

import (
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

// Paths of the binaries under test, built once by TestMain.
var (
	qpBin  string // cmd/queue-proxy
	appBin string // test/app
)

const modulePath = "github.com/queue-proxy/queue-proxy"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "qp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	qpBin = filepath.Join(dir, "queue-proxy")
	appBin = filepath.Join(dir, "app")
	if err := buildAll(map[string]string{
		qpBin:  modulePath + "/cmd/queue-proxy",
		appBin: modulePath + "/test/app",
	}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the binaries under test:", err)
		return 1
	}
	return m.Run()
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

// buildAll builds each package (value) into its output path (key), in
// parallel, without the race detector: the processes under test run as
// they would in production.
func buildAll(targets map[string]string) error {
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
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			b, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("go build %s: %v\n%s", pkg, err, b))
				return
			}
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "e2e: built %s in %v\n", pkg, time.Since(start).Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
