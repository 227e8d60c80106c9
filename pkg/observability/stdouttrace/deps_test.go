package stdouttrace

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoSDKInBinary checks that the package, without its tests, links
// neither the OpenTelemetry SDK nor grpc nor protobuf: only the tests
// compare against the SDK.
func TestNoSDKInBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || !strings.HasSuffix(deps[len(deps)-1], "/stdouttrace") {
		t.Fatalf("go list -deps did not end with this package: %q", deps)
	}
	for _, dep := range deps {
		for _, banned := range []string{"go.opentelemetry.io/otel", "google.golang.org/grpc", "google.golang.org/protobuf"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("the package links %s", dep)
			}
		}
	}
}
