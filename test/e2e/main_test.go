package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/queue-proxy/queue-proxy/test/harness"
)

// bins are the binaries under test, built once by TestMain.
var bins harness.Binaries

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, "e2e", filepath.Join("..", ".."), &bins))
}
