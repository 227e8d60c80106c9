package otel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/queue-proxy/queue-proxy/test/harness"
)

// bins are the binaries under test, built once by TestMain from the parent
// module with the parent's go.mod (not this module's, which holds the
// Collector), so that they are the ones that ship.
var bins harness.Binaries

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, "otel", filepath.Join("..", ".."), &bins))
}
