package main

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTracingEnvBinaryExit builds the binary and runs it with OTLP tracing
// and a bad OTEL_BSP_* value: it must exit 1 at once, its log naming the
// variable and the value. The environment is only what Knative sets (on
// free ports) plus the tracing settings, so that nothing of the test
// runner's environment decides the outcome.
func TestTracingEnvBinaryExit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "queue-proxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cases := []struct {
		name, value string
	}{
		{"OTEL_BSP_MAX_QUEUE_SIZE", "abc"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			// Bounds a binary that wrongly starts; the expected exit is
			// immediate.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = []string{
				"SERVING_NAMESPACE=default", "SERVING_SERVICE=hello", "SERVING_CONFIGURATION=hello",
				"SERVING_REVISION=hello-00001", "SERVING_POD=hello-00001-deployment-abc", "SERVING_POD_IP=10.0.0.7",
				"QUEUE_SERVING_PORT=0", "QUEUE_SERVING_TLS_PORT=8112", "QP_ADMIN_PORT=0", "QP_METRICS_PORT=0", "USER_PORT=8080",
				"CONTAINER_CONCURRENCY=0", "REVISION_TIMEOUT_SECONDS=300",
				"REVISION_RESPONSE_START_TIMEOUT_SECONDS=0", "REVISION_IDLE_TIMEOUT_SECONDS=0",
				"SERVING_LOGGING_CONFIG=", "SERVING_LOGGING_LEVEL=", "SYSTEM_NAMESPACE=knative-serving", "HOST_IP=10.0.0.1",
				"ENABLE_HTTP2_AUTO_DETECTION=false", "ENABLE_HTTP_FULL_DUPLEX=false", "ENABLE_MULTI_CONTAINER_PROBES=false", "ROOT_CA=",
				`SERVING_READINESS_PROBE={"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}`,
				`OBSERVABILITY_CONFIG={"tracing":{"protocol":"grpc","endpoint":"http://127.0.0.1:4317","samplingRate":1}}`,
				tc.name + "=" + tc.value,
			}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("queue-proxy ended with %v, want exit status 1; output:\n%s", err, out)
			}
			if want := tc.name + `=\"` + tc.value + `\"`; !strings.Contains(string(out), want) {
				t.Errorf("output does not name %s:\n%s", want, out)
			}
		})
	}
}
