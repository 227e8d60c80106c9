package harness

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// childMode is the variable that makes the test binary act as a child
// process for the tests of Start and its helpers.
const childMode = "HARNESS_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childMode) {
	case "":
		os.Exit(m.Run())
	case "exit3":
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		os.Exit(3)
	case "port-race":
		fmt.Fprintln(os.Stderr, "listen tcp :8080: bind: address already in use")
		os.Exit(1)
	case "sleep":
		time.Sleep(time.Minute)
		os.Exit(0)
	default:
		os.Exit(2)
	}
}

// startChild starts this test binary as a child in the given mode.
func startChild(t *testing.T, mode string) *Process {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Start(t, "child-"+mode, bin, nil, ChildEnv(map[string]string{childMode: mode}))
}
