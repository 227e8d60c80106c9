package sharedmain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// tracingEnvVars are the variables tracing reads outside config; tests
// clear them, as setEnv (config_test.go) clears only config's.
var tracingEnvVars = []string{
	"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
	"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
	"OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME", "QP_OBSERVABILITY_GENERATION",
}

func clearTracingEnv(t *testing.T) {
	for _, k := range tracingEnvVars {
		t.Setenv(k, "")
	}
}

// logEntries decodes the JSON lines of a log written through logTo.
func logEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	var entries []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(readLog(t, path)), "\n") {
		if l == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		entries = append(entries, e)
	}
	return entries
}

// entryText is every field value of a log entry, for substring checks.
func entryText(e map[string]any) string {
	var b strings.Builder
	for _, v := range e {
		fmt.Fprint(&b, v, "\n")
	}
	return b.String()
}

// Tracing settings of OBSERVABILITY_CONFIG the tests below use.
const (
	obsTracingGRPC   = `{"tracing":{"protocol":"grpc","endpoint":"http://127.0.0.1:4317","samplingRate":1}}`
	obsTracingHTTP   = `{"tracing":{"protocol":"http/protobuf","endpoint":"http://127.0.0.1:4318/v1/traces","samplingRate":1}}`
	obsTracingZipkin = `{"tracing":{"protocol":"zipkin","endpoint":"http://127.0.0.1:9411/api/v2/spans","samplingRate":1}}`
)

// TestRunTracingEnvErrors: with OTLP (or the newest generation's Zipkin)
// tracing, a bad OTEL_BSP_*, OTEL_TRACES_SAMPLER_ARG (without
// OTEL_TRACES_SAMPLER) or OTLP endpoint variable is a startup error naming
// the variable and its value, also logged at ERROR.
func TestRunTracingEnvErrors(t *testing.T) {
	obs := map[string]string{"grpc": obsTracingGRPC, "http/protobuf": obsTracingHTTP, "zipkin": obsTracingZipkin}
	cases := []struct {
		protocol, name, value string
	}{
		{"grpc", "OTEL_BSP_SCHEDULE_DELAY", "abc"},
		{"grpc", "OTEL_BSP_SCHEDULE_DELAY", "-1"},
		{"grpc", "OTEL_BSP_SCHEDULE_DELAY", "0"},
		{"grpc", "OTEL_BSP_SCHEDULE_DELAY", "1.5"},
		{"grpc", "OTEL_BSP_EXPORT_TIMEOUT", "abc"},
		{"grpc", "OTEL_BSP_EXPORT_TIMEOUT", "-1"},
		{"grpc", "OTEL_BSP_EXPORT_TIMEOUT", "5s"},
		{"grpc", "OTEL_BSP_MAX_QUEUE_SIZE", "abc"},
		{"grpc", "OTEL_BSP_MAX_QUEUE_SIZE", "-1"},
		{"grpc", "OTEL_BSP_MAX_QUEUE_SIZE", "0"},
		{"grpc", "OTEL_BSP_MAX_QUEUE_SIZE", "1048577"},
		{"grpc", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "abc"},
		{"grpc", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1"},
		{"grpc", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"},
		{"http/protobuf", "OTEL_BSP_MAX_QUEUE_SIZE", "abc"},
		{"grpc", "OTEL_TRACES_SAMPLER_ARG", "half"},
		{"http/protobuf", "OTEL_TRACES_SAMPLER_ARG", "1/2"},
		{"zipkin", "OTEL_TRACES_SAMPLER_ARG", "half"},
		{"grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector:4317"},
		{"grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"},
		{"grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:port"},
		{"http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318"},
		{"http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1"},
	}
	for _, tc := range cases {
		t.Run(tc.protocol+"/"+tc.name+"="+tc.value, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			clearMetricsEnv(t)
			clearTracingEnv(t)
			env := baseEnv()
			env["QUEUE_SERVING_PORT"], env["QP_ADMIN_PORT"], env["QP_METRICS_PORT"] = "0", "0", "0"
			env["OBSERVABILITY_CONFIG"] = obs[tc.protocol]
			logPath := logTo(t, env)
			setEnv(t, env)
			t.Setenv(tc.name, tc.value)
			err := runExpectingFailure(t)
			if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), strconv.Quote(tc.value)) {
				t.Fatalf("run = %v, want an error naming %s and %q", err, tc.name, tc.value)
			}
			var logged bool
			for _, e := range logEntries(t, logPath) {
				if e["severity"] == "ERROR" && strings.Contains(entryText(e), err.Error()) {
					logged = true
				}
			}
			if !logged {
				t.Errorf("the error %q is not logged at ERROR:\n%s", err, readLog(t, logPath))
			}
		})
	}
}

// TestRunTracingEnvWarnings: with OTEL_TRACES_SAMPLER set, a bad sampler
// name or ratio is not fatal (as in Knative, where the OpenTelemetry SDK
// only reports it): queue-proxy logs a WARN naming the variable and its
// value, starts, and samples with the SDK's fallback, which samples a new
// trace even though tracing.samplingRate is 0.
func TestRunTracingEnvWarnings(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		wantVar string // named by the warning, with its value
	}{
		{"unknown sampler", map[string]string{"OTEL_TRACES_SAMPLER": "bogus"}, "OTEL_TRACES_SAMPLER"},
		{"unparsable ratio", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG"},
		{"ratio above 1", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearTracingEnv(t)
			// Nobody listens at the endpoint; the 1 ms export bound keeps the
			// failing export's retries from delaying the exit.
			env := map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"grpc","endpoint":"http://127.0.0.1:9","samplingRate":0}}`,
				"OTEL_BSP_EXPORT_TIMEOUT": "1"}
			for k, v := range tc.env {
				env[k] = v
			}
			logPath := logTo(t, env)
			app, upstream := traceApp(t)
			q := startQP(t, app, env)
			if r := get(t, q.url(serverMain, "/"), nil); r.code != 200 || r.body != "ok" {
				t.Fatalf("request: %d %q", r.code, r.body)
			}
			if h := <-upstream; !sampledTraceparent.MatchString(h.traceparent) || h.b3Trace != "" {
				t.Errorf("upstream headers %+v, want a sampled traceparent only (the fallback sampler)", h)
			}
			q.stop(t)
			want := tc.wantVar + "=" + strconv.Quote(tc.env[tc.wantVar])
			var warned int
			for _, e := range logEntries(t, logPath) {
				if text := entryText(e); strings.Contains(text, want) {
					warned++
					if e["severity"] != "WARN" {
						t.Errorf("logged at %v, want WARN: %v", e["severity"], e)
					}
				}
			}
			if warned != 1 {
				t.Errorf("%d log lines name %s, want one warning:\n%s", warned, want, readLog(t, logPath))
			}
		})
	}
}

// TestRunBSPNotRead: the OTEL_BSP_* variables tune only the OTLP exporters'
// batching; with any other tracing setup (or none) they are not read, so
// bad values neither stop queue-proxy nor produce a log line.
func TestRunBSPNotRead(t *testing.T) {
	bad := map[string]string{
		"OTEL_BSP_SCHEDULE_DELAY": "-1", "OTEL_BSP_EXPORT_TIMEOUT": "abc",
		"OTEL_BSP_MAX_QUEUE_SIZE": "abc", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0",
	}
	cases := []struct {
		name string
		env  map[string]string
	}{
		{"newest tracing none", map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"none"}}`}},
		{"newest tracing unset", map[string]string{"OBSERVABILITY_CONFIG": `{}`}},
		{"newest stdout", map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"stdout"}}`}},
		{"newest zipkin", map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"zipkin","endpoint":"http://127.0.0.1:9/api/v2/spans"}}`}},
		{"1.15 off", map[string]string{"OBSERVABILITY_CONFIG": ""}},
		{"1.15 zipkin", map[string]string{"OBSERVABILITY_CONFIG": "", "TRACING_CONFIG_BACKEND": "zipkin",
			"TRACING_CONFIG_ZIPKIN_ENDPOINT": "http://127.0.0.1:9/api/v2/spans", "TRACING_CONFIG_SAMPLE_RATE": "0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearTracingEnv(t)
			captureStdout(t) // the stdout protocol's spans
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			for k, v := range bad {
				env[k] = v
			}
			logPath := logTo(t, env)
			q := startQP(t, echoApp(t), env)
			if r := get(t, q.url(serverMain, "/"), nil); r.code != 200 {
				t.Errorf("request: %d %q", r.code, r.body)
			}
			q.stop(t)
			if log := readLog(t, logPath); strings.Contains(log, "OTEL_BSP") {
				t.Errorf("the log mentions OTEL_BSP_*:\n%s", log)
			}
		})
	}
}

// TestRunBSPAccepted: the edges of the accepted OTEL_BSP_* values start
// queue-proxy with OTLP tracing: export timeout 0 (no timeout), a 1 ms
// delay, the largest queue, and a batch size above the queue size (capped).
func TestRunBSPAccepted(t *testing.T) {
	clearTracingEnv(t)
	q := startQP(t, echoApp(t), map[string]string{
		"OBSERVABILITY_CONFIG":    `{"tracing":{"protocol":"grpc","endpoint":"http://127.0.0.1:9","samplingRate":0}}`,
		"OTEL_BSP_SCHEDULE_DELAY": "1", "OTEL_BSP_EXPORT_TIMEOUT": "0",
		"OTEL_BSP_MAX_QUEUE_SIZE": "1048576", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2000000",
	})
	if r := get(t, q.url(serverMain, "/"), nil); r.code != 200 {
		t.Errorf("request: %d %q", r.code, r.body)
	}
	q.stop(t)
}
