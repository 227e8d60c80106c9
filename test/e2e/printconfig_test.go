package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/queue-proxy/queue-proxy/test/harness"
)

// runQueueProxy runs the binary with args in env (on top of the harness's
// minimal environment) until it exits, and returns its exit status, stdout
// and stderr. It is for runs that end by themselves: -print-config, and
// startup failures.
func runQueueProxy(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), harness.StartupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.QueueProxy, args...)
	cmd.Env = harness.ChildEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("queue-proxy %s: %v (it should have exited by itself)\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	return 0, "", ""
}

// printConfigPorts are the pod's ports for -print-config, which listens on
// none of them.
var printConfigPorts = harness.Ports{User: 8080, Main: 8012, TLS: 8112, Admin: 8022, Metrics: 9090, Prometheus: 9091, Profiling: 8008, Debug: 8023}

// TestPrintConfigBinary: `queue-proxy -print-config` prints the resolved
// configuration as JSON and exits 0, secrets redacted; with an environment
// startup rejects it prints startup's error on stderr and exits 1; an
// unknown flag is a usage error, status 2.
func TestPrintConfigBinary(t *testing.T) {
	t.Parallel()

	t.Run("valid environments", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name    string
			env     map[string]string
			want    map[string]string // dotted path (of the document) to its value
			secrets []string
		}{{
			name: "newest",
			env: map[string]string{
				"OBSERVABILITY_CONFIG":       `{"tracing":{"protocol":"grpc","endpoint":"http://collector:4317","samplingRate":1},"requestMetrics":{"protocol":"prometheus"}}`,
				"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer e2e-secret-1",
			},
			want: map[string]string{
				"observabilityGeneration.value":                        "newest",
				"derived.listeners.main.value":                         ":8012",
				"derived.listeners.admin.value":                        ":8022",
				"derived.listeners.userMetrics.value":                  ":9091",
				"derived.listeners.debug.value":                        "127.0.0.1:8023",
				"derived.tracing.exporter.value":                       "grpc",
				"derived.tracing.otlp.headers.value.authorization":     "<redacted>",
				"derived.timeouts.drainQuietPeriod.value":              "1s",
				"derived.timeouts.drainQuietPeriod.source":             "env:QP_DRAIN_QUIET_PERIOD",
				"observabilityConfig.tracing\x00samplingRate.source":   "OBSERVABILITY_CONFIG:tracing.samplingRate",
				"observabilityConfig.runtime\x00exportInterval.source": "default",
			},
			secrets: []string{"e2e-secret-1"},
		}, {
			name: "Knative 1.15",
			env: map[string]string{
				"OBSERVABILITY_CONFIG":           "\x00unset",
				"TRACING_CONFIG_BACKEND":         "zipkin",
				"TRACING_CONFIG_ZIPKIN_ENDPOINT": "http://zipkin:e2e-secret-2@zipkin:9411/api/v2/spans",
				"TRACING_CONFIG_SAMPLE_RATE":     "0.1",
				"QP_DEBUG_ADDRESS":               "off",
			},
			want: map[string]string{
				"observabilityGeneration.value":  "1.15",
				"derived.tracing.exporter.value": "zipkin",
				"derived.tracing.endpoint.value": "http://<redacted>@zipkin:9411/api/v2/spans",
				"derived.tracing.sampler.value":  "ProbabilitySampler{0.1}",
				"derived.listeners.debug.value":  "off",
			},
			secrets: []string{"e2e-secret-2"},
		}}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				env := knativeEnv(printConfigPorts)
				for k, v := range tc.env {
					if v == "\x00unset" {
						delete(env, k)
						continue
					}
					env[k] = v
				}
				code, stdout, stderr := runQueueProxy(t, env, "-print-config")
				if code != 0 {
					t.Fatalf("exit status %d, want 0; stderr:\n%s", code, stderr)
				}
				if stderr != "" {
					t.Errorf("stderr is not empty:\n%s", stderr)
				}
				var doc map[string]any
				if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
				}
				for path, want := range tc.want {
					var v any = doc
					for _, key := range strings.Split(path, ".") {
						m, _ := v.(map[string]any)
						v = m[strings.ReplaceAll(key, "\x00", ".")]
					}
					if v != want {
						t.Errorf("%s = %#v, want %q", strings.ReplaceAll(path, "\x00", "."), v, want)
					}
				}
				for _, s := range tc.secrets {
					if strings.Contains(stdout, s) {
						t.Errorf("stdout shows the secret %q", s)
					}
				}
			})
		}
	})

	t.Run("bad environments", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name, variable, value string
			// logged: startup reports the error in its JSON log rather than
			// as a plain line.
			logged bool
		}{
			{"int not a number", "CONTAINER_CONCURRENCY", "ten", false},
			{"required missing", "SERVING_REVISION", "\x00unset", false},
			{"bad debug address", "QP_DEBUG_ADDRESS", "8023", false},
			{"bad upstream path", "QP_UPSTREAM_PATH", "fast", false},
			{"bad readiness probe", "SERVING_READINESS_PROBE", `{"exec":{"command":["true"]}}`, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				var p harness.Ports
				p.User = harness.FreePort(t)
				p.PickQueueProxy(t)
				env := knativeEnv(p)
				if tc.value == "\x00unset" {
					delete(env, tc.variable)
				} else {
					env[tc.variable] = tc.value
				}
				code, stdout, stderr := runQueueProxy(t, env, "-print-config")
				if code != 1 {
					t.Fatalf("exit status %d, want 1; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
				}
				if stdout != "" {
					t.Errorf("stdout is not empty:\n%s", stdout)
				}
				message := strings.TrimSuffix(stderr, "\n")
				if message == "" || strings.Contains(message, "\n") || !strings.Contains(message, tc.variable) {
					t.Errorf("stderr is not one line naming %s:\n%s", tc.variable, stderr)
				}

				// Startup, with the same environment, gives the same message.
				startCode, _, startStderr := runQueueProxy(t, env)
				if startCode != 1 {
					t.Fatalf("startup: exit status %d, want 1; stderr:\n%s", startCode, startStderr)
				}
				if !tc.logged {
					if startStderr != stderr {
						t.Errorf("startup's stderr differs:\n-print-config: %q\nstartup:       %q", stderr, startStderr)
					}
					return
				}
				if !loggedError(startStderr, message) {
					t.Errorf("startup's log has no error %q:\n%s", message, startStderr)
				}
			})
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runQueueProxy(t, knativeEnv(printConfigPorts), "-no-such-flag")
		if code != 2 {
			t.Errorf("exit status %d, want 2", code)
		}
		if stdout != "" {
			t.Errorf("stdout is not empty:\n%s", stdout)
		}
		if !strings.Contains(stderr, "flag provided but not defined: -no-such-flag") || !strings.Contains(stderr, "-print-config") {
			t.Errorf("stderr is not the flag package's usage error:\n%s", stderr)
		}
	})
}

// loggedError reports whether one of the JSON log lines in log has the
// error field message.
func loggedError(log, message string) bool {
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Error == message {
			return true
		}
	}
	return false
}
