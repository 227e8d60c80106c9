package sharedmain

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// setCleanEnv is setEnv after also clearing every variable the document
// reads outside config: the other env structs, OTEL_*, METRICS_*, QP_*.
func setCleanEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OTEL_") || strings.HasPrefix(k, "METRICS_") || strings.HasPrefix(k, "QP_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, v := range EnvVars() {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
	setEnv(t, env)
}

// withEnv is baseEnv with changes; a value of unset deletes the variable.
func withEnv(changes map[string]string) map[string]string {
	env := baseEnv()
	for k, v := range changes {
		if v == unset {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return env
}

const unset = "\x00unset"

// printConfigDoc runs PrintConfig and decodes its output.
func printConfigDoc(t *testing.T) (map[string]any, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := PrintConfig(&buf); err != nil {
		t.Fatalf("PrintConfig: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("PrintConfig wrote invalid JSON: %v\n%s", err, buf.Bytes())
	}
	return doc, buf.String()
}

// docAt returns the value at path in the decoded document; ok is false when
// there is none.
func docAt(doc any, path ...string) (any, bool) {
	v := doc
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// want is one expected setting of the document: the value (JSON-decoded:
// numbers are float64) and, unless empty, the source.
type want struct {
	path   []string
	value  any
	source string
}

func p(path ...string) []string { return path }

func TestPrintConfig(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []want
		// secrets must not appear anywhere in the output; redactedAt are
		// paths whose value must be "<redacted>".
		secrets    []string
		redactedAt [][]string
		warnings   []string // substrings of the warnings, in order
	}{{
		name: "newest generation: OTLP tracing and metrics, request log",
		env: withEnv(map[string]string{
			"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"http/protobuf","endpoint":"https://otel-user:tracepw-S1@collector:4318/v1/traces","samplingRate":0.25},` +
				`"requestMetrics":{"protocol":"grpc","endpoint":"http://metrics-user:metricspw-S2@collector:4317"},"enableRequestLog":true}`,
			"OTEL_EXPORTER_OTLP_HEADERS":          "Authorization=Bearer hdr-S3,x-tenant=tenant-S4",
			"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector-env:4317",
			"SERVING_READINESS_PROBE": `{"httpGet":{"port":8080,"host":"127.0.0.1","scheme":"HTTP","path":"/ready","httpHeaders":[` +
				`{"name":"Authorization","value":"Basic probe-S6"},{"name":"X-Api-Key","value":"probe-S7"},{"name":"X-Plain","value":"visible"}]},"successThreshold":1}`,
			"QP_DRAIN_QUIET_PERIOD": "10s",
			"CONTAINER_CONCURRENCY": "10",
		}),
		want: []want{
			{p("observabilityGeneration"), nil, "env:OBSERVABILITY_CONFIG"},
			{p("observabilityGeneration", "value"), "newest", ""},
			{p("observabilityGeneration", "note"), "OBSERVABILITY_CONFIG is set", ""},
			{p("derived", "tracing", "exporter"), "http/protobuf", "OBSERVABILITY_CONFIG:tracing.protocol"},
			{p("derived", "tracing", "endpoint"), "https://collector:4318/v1/traces", "OBSERVABILITY_CONFIG:tracing.endpoint"},
			{p("derived", "tracing", "sampler"), nil, "OBSERVABILITY_CONFIG:tracing.samplingRate"},
			{p("derived", "tracing", "otlp", "headers"), nil, "env:OTEL_EXPORTER_OTLP_HEADERS"},
			{p("derived", "tracing", "otlp", "timeout"), "10s", "default"},
			{p("derived", "tracing", "batch", "maxQueueSize"), 2048.0, "default"},
			{p("derived", "requestMetrics", "output"), "grpc", "OBSERVABILITY_CONFIG:requestMetrics.protocol"},
			{p("derived", "requestMetrics", "endpoint"), "http://collector-env:4317", "env:OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
			{p("derived", "requestMetrics", "exportInterval"), "1m0s", "default"},
			{p("derived", "requestLog", "enabled"), true, "OBSERVABILITY_CONFIG:enableRequestLog"},
			{p("derived", "requestLog", "template"), DefaultRequestLogTemplate, "default"},
			{p("derived", "timeouts", "revision"), "5m0s", "env:REVISION_TIMEOUT_SECONDS"},
			{p("derived", "timeouts", "responseStart"), "off", "env:REVISION_RESPONSE_START_TIMEOUT_SECONDS"},
			{p("derived", "timeouts", "drainQuietPeriod"), "10s", "env:QP_DRAIN_QUIET_PERIOD"},
			{p("derived", "timeouts", "hijackDrain"), "1m0s", "default"},
			{p("derived", "containerConcurrency"), 10.0, "env:CONTAINER_CONCURRENCY"},
			{p("derived", "upstreamPath"), "generic", "OBSERVABILITY_CONFIG:tracing.protocol"},
			{p("derived", "listeners", "main"), ":8012", "env:QUEUE_SERVING_PORT"},
			{p("derived", "listeners", "admin"), ":8022", "default"},
			{p("derived", "listeners", "userMetrics"), "off", "OBSERVABILITY_CONFIG:requestMetrics.protocol"},
			{p("derived", "listeners", "debug"), "127.0.0.1:8023", "default"},
			{p("derived", "listeners", "debug", "note"), "loopback only", ""},
			{p("derived", "profiling"), false, "default"},
			{p("env", "SERVING_NAMESPACE"), "default", "env:SERVING_NAMESPACE"},
			{p("env", "QP_HIJACK_DRAIN_TIMEOUT"), "1m0s", "default"},
			{p("env", "CONTAINER_CONCURRENCY"), 10.0, "env:CONTAINER_CONCURRENCY"},
			{p("env", "OBSERVABILITY_CONFIG", "value", "tracing", "endpoint"), "https://<redacted>@collector:4318/v1/traces", ""},
			{p("env", "SERVING_READINESS_PROBE", "value", "httpGet", "path"), "/ready", ""},
			{p("observabilityConfig", "tracing.samplingRate"), 0.25, "OBSERVABILITY_CONFIG:tracing.samplingRate"},
			{p("observabilityConfig", "tracing.endpoint"), "https://<redacted>@collector:4318/v1/traces", "OBSERVABILITY_CONFIG:tracing.endpoint"},
			{p("observabilityConfig", "requestMetrics.endpoint"), "http://<redacted>@collector:4317", "OBSERVABILITY_CONFIG:requestMetrics.endpoint"},
			{p("observabilityConfig", "runtime.exportInterval"), "15s", "default"},
			{p("observabilityConfig", "requestMetrics.exportInterval"), "0s", "default"},
		},
		secrets: []string{"tracepw-S1", "otel-user", "metricspw-S2", "metrics-user", "hdr-S3", "Bearer", "tenant-S4", "probe-S6", "probe-S7"},
		redactedAt: [][]string{
			p("derived", "tracing", "otlp", "headers", "value", "Authorization"),
			p("derived", "tracing", "otlp", "headers", "value", "x-tenant"),
			p("derived", "requestMetrics", "otlp", "headers", "value", "Authorization"),
		},
	}, {
		name: "Knative 1.15: TRACING_CONFIG_*, Prometheus request metrics, profiling",
		env: withEnv(map[string]string{
			"OBSERVABILITY_CONFIG":            unset,
			"TRACING_CONFIG_BACKEND":          "zipkin",
			"TRACING_CONFIG_ZIPKIN_ENDPOINT":  "http://zipuser:zippw-S8@zipkin:9411/api/v2/spans?api_key=zipkey-S9&x=1",
			"TRACING_CONFIG_SAMPLE_RATE":      "0.5",
			"SERVING_REQUEST_METRICS_BACKEND": "prometheus",
			"METRICS_PROMETHEUS_PORT":         "9191",
			"SERVING_ENABLE_REQUEST_LOG":      "true",
			"SERVING_REQUEST_LOG_TEMPLATE":    "{{.Request.URL}}",
			"ENABLE_PROFILING":                "true",
			"METRICS_COLLECTOR_ADDRESS":       "http://oc:agentpw-S10@agent:55678",
			"QP_DEBUG_ADDRESS":                "off",
		}),
		want: []want{
			{p("observabilityGeneration"), "1.15", "default"},
			{p("observabilityGeneration", "note"), "OBSERVABILITY_CONFIG is not set", ""},
			{p("derived", "tracing", "exporter"), "zipkin", "env:TRACING_CONFIG_BACKEND"},
			{p("derived", "tracing", "endpoint"), "http://<redacted>@zipkin:9411/api/v2/spans?api_key=<redacted>&x=1", "env:TRACING_CONFIG_ZIPKIN_ENDPOINT"},
			{p("derived", "tracing", "sampler"), "ProbabilitySampler{0.5}", "env:TRACING_CONFIG_SAMPLE_RATE"},
			{p("derived", "requestMetrics", "output"), "prometheus", "env:SERVING_REQUEST_METRICS_BACKEND"},
			{p("derived", "listeners", "userMetrics"), ":9191", "env:METRICS_PROMETHEUS_PORT"},
			{p("derived", "listeners", "profile"), ":8008", "env:ENABLE_PROFILING"},
			{p("derived", "listeners", "debug"), "off", "env:QP_DEBUG_ADDRESS"},
			{p("derived", "requestLog", "enabled"), true, "env:SERVING_ENABLE_REQUEST_LOG"},
			{p("derived", "requestLog", "template"), "{{.Request.URL}}", "env:SERVING_REQUEST_LOG_TEMPLATE"},
			{p("derived", "upstreamPath"), "generic", "env:TRACING_CONFIG_BACKEND"},
			{p("derived", "containerConcurrency"), 0.0, "env:CONTAINER_CONCURRENCY"},
			{p("derived", "profiling"), true, "env:ENABLE_PROFILING"},
			{p("env", "TRACING_CONFIG_SAMPLE_RATE"), 0.5, "env:TRACING_CONFIG_SAMPLE_RATE"},
			{p("env", "OBSERVABILITY_CONFIG"), "", "default"},
			{p("env", "METRICS_COLLECTOR_ADDRESS"), "http://<redacted>@agent:55678", "env:METRICS_COLLECTOR_ADDRESS"},
			{p("env", "METRICS_PROMETHEUS_PORT"), "9191", "env:METRICS_PROMETHEUS_PORT"},
			{p("observabilityConfig", "tracing.protocol"), "none", "default"},
			{p("observabilityConfig", "runtime.exportInterval"), "15s", "default"},
		},
		secrets: []string{"zippw-S8", "zipuser", "zipkey-S9", "agentpw-S10"},
	}, {
		name: "forced generation, stdout tracing, scheme-less userinfo, warnings",
		env: withEnv(map[string]string{
			"QP_OBSERVABILITY_GENERATION":     "1.15",
			"OBSERVABILITY_CONFIG":            `{"Tracing":{"protocol":"stdout","endpoint":"tuser:tpw-S11@collector:4317"},"enableRequestLog":true,"requestLogTemplate":"{{.Bad"}`,
			"QP_UPSTREAM_PATH":                "generic",
			"QP_SERVER_PATH":                  "generic",
			"QP_DEBUG_ADDRESS":                "",
			"SERVING_REQUEST_METRICS_BACKEND": "opencensus",
		}),
		want: []want{
			{p("observabilityGeneration"), "1.15", "env:QP_OBSERVABILITY_GENERATION"},
			{p("derived", "tracing", "exporter"), "stdout", "OBSERVABILITY_CONFIG:tracing.protocol"},
			{p("derived", "tracing", "sampler"), "AlwaysOnSampler", "OBSERVABILITY_CONFIG:tracing.protocol"},
			{p("derived", "upstreamPath"), "generic", "env:QP_UPSTREAM_PATH"},
			{p("derived", "serverPath"), "generic", "env:QP_SERVER_PATH"},
			{p("derived", "listeners", "debug"), "127.0.0.1:8023", "env:QP_DEBUG_ADDRESS"},
			{p("derived", "requestLog", "enabled"), false, "OBSERVABILITY_CONFIG:enableRequestLog"},
			{p("derived", "requestLog", "template"), "{{.Bad", "OBSERVABILITY_CONFIG:requestLogTemplate"},
			{p("observabilityConfig", "tracing.endpoint"), "<redacted>@collector:4317", "OBSERVABILITY_CONFIG:tracing.endpoint"},
			{p("observabilityConfig", "tracing.samplingRate"), 0.0, "default"},
		},
		secrets:  []string{"tpw-S11", "tuser"},
		warnings: []string{`SERVING_REQUEST_METRICS_BACKEND="opencensus" is not supported in the 1.15 generation`},
	}, {
		name: "sampler, timeout and batch from the environment, profiling; a warning with fields",
		env: withEnv(map[string]string{
			"OBSERVABILITY_CONFIG":              `{"tracing":{"protocol":"grpc","endpoint":"http://collector:4317","samplingRate":0.5},"runtime":{"profiling":"enabled"}}`,
			"OTEL_TRACES_SAMPLER":               "bogus",
			"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
			"OTEL_BSP_SCHEDULE_DELAY":           "100",
			"PROFILING_PORT":                    "18008",
			"QP_DEBUG_ADDRESS":                  ":8023",
		}),
		want: []want{
			{p("derived", "tracing", "sampler"), nil, "env:OTEL_TRACES_SAMPLER"},
			{p("derived", "tracing", "endpoint"), "http://collector:4317", "OBSERVABILITY_CONFIG:tracing.endpoint"},
			{p("derived", "tracing", "otlp", "timeout"), "2.5s", "env:OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"},
			{p("derived", "tracing", "otlp", "headers"), map[string]any{}, "default"},
			{p("derived", "tracing", "batch", "scheduleDelay"), "100ms", "env:OTEL_BSP_SCHEDULE_DELAY"},
			{p("derived", "profiling"), true, "OBSERVABILITY_CONFIG:runtime.profiling"},
			{p("derived", "listeners", "profile"), ":18008", "env:PROFILING_PORT"},
			{p("derived", "requestMetrics", "output"), "off", "default"},
			{p("derived", "listeners", "debug"), ":8023", "env:QP_DEBUG_ADDRESS"},
			{p("derived", "listeners", "debug", "note"), "reachable from outside the pod", ""},
		},
		warnings: []string{`Ignoring the trace sampler's environment, as the OpenTelemetry SDK does error=OTEL_TRACES_SAMPLER="bogus"`},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setCleanEnv(t, tc.env)
			doc, out := printConfigDoc(t)
			for _, w := range tc.want {
				got, ok := docAt(doc, w.path...)
				if !ok {
					t.Errorf("%s: missing", strings.Join(w.path, "."))
					continue
				}
				if w.source != "" {
					if s, _ := docAt(got, "source"); s != w.source {
						t.Errorf("%s: source %v, want %q", strings.Join(w.path, "."), s, w.source)
					}
					if w.value == nil {
						continue
					}
					got, _ = docAt(got, "value")
				}
				if !reflect.DeepEqual(got, w.value) {
					t.Errorf("%s = %#v, want %#v", strings.Join(w.path, "."), got, w.value)
				}
			}
			for _, s := range tc.secrets {
				if strings.Contains(out, s) {
					t.Errorf("the output shows the secret %q", s)
				}
			}
			for _, path := range tc.redactedAt {
				if got, _ := docAt(doc, path...); got != redacted {
					t.Errorf("%s = %#v, want %q", strings.Join(path, "."), got, redacted)
				}
			}
			warnings, _ := docAt(doc, "warnings")
			list, ok := warnings.([]any)
			if !ok || len(list) != len(tc.warnings) {
				t.Fatalf("warnings = %#v, want %d matching %q", warnings, len(tc.warnings), tc.warnings)
			}
			for i, w := range tc.warnings {
				if s, _ := list[i].(string); !strings.Contains(s, w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, s, w)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// TestPrintConfigListsEverySetting: the env section holds every variable of
// the env reference and the observabilityConfig section every field, each
// with a value and a source.
func TestPrintConfigListsEverySetting(t *testing.T) {
	setCleanEnv(t, baseEnv())
	doc, _ := printConfigDoc(t)
	check := func(section, name string) {
		s, ok := docAt(doc, section, name)
		if !ok {
			t.Errorf("%s: %s is missing", section, name)
			return
		}
		if _, ok := docAt(s, "value"); !ok {
			t.Errorf("%s: %s has no value", section, name)
		}
		if src, _ := docAt(s, "source"); src == "" || src == nil {
			t.Errorf("%s: %s has no source", section, name)
		}
	}
	for _, v := range EnvVars() {
		check("env", v.Name)
	}
	for _, f := range ObservabilityFields() {
		check("observabilityConfig", f.Path)
	}
	if env, _ := docAt(doc, "env"); len(env.(map[string]any)) != len(EnvVars()) {
		t.Errorf("env has %d members, want %d", len(env.(map[string]any)), len(EnvVars()))
	}
}

// badEnvCases are environments startup rejects. stage is the run stage whose
// setup function rejects them too ("" for loadConfig and observability).
var badEnvCases = []struct {
	name  string
	env   map[string]string
	stage string
}{
	{"missing required variable", map[string]string{"SERVING_NAMESPACE": unset}, ""},
	{"bad int", map[string]string{"CONTAINER_CONCURRENCY": "ten"}, ""},
	{"empty int", map[string]string{"REVISION_TIMEOUT_SECONDS": ""}, ""},
	{"bad bool", map[string]string{"ENABLE_HTTP_FULL_DUPLEX": "yes please"}, ""},
	{"empty bool", map[string]string{"ENABLE_HTTP_FULL_DUPLEX": ""}, ""},
	{"bad float", map[string]string{"TRACING_CONFIG_SAMPLE_RATE": "half"}, ""},
	{"bad duration", map[string]string{"QP_DRAIN_QUIET_PERIOD": "soon"}, ""},
	{"two bad values", map[string]string{"USER_PORT": "99999", "REVISION_TIMEOUT_SECONDS": "-1"}, ""},
	{"malformed OBSERVABILITY_CONFIG", map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":`}, ""},
	{"bad QP_UPSTREAM_PATH", map[string]string{"QP_UPSTREAM_PATH": "fast"}, ""},
	{"bad QP_SERVER_PATH", map[string]string{"QP_SERVER_PATH": "fast"}, ""},
	{"bad QP_OBSERVABILITY_GENERATION", map[string]string{"QP_OBSERVABILITY_GENERATION": "2.0"}, ""},
	{"QP_DEBUG_ADDRESS without a port", map[string]string{"QP_DEBUG_ADDRESS": "8023"}, ""},
	{"QP_DEBUG_ADDRESS with a named port", map[string]string{"QP_DEBUG_ADDRESS": "127.0.0.1:http"}, ""},
	{"QP_DEBUG_ADDRESS with a host name", map[string]string{"QP_DEBUG_ADDRESS": "debug.example.com:8023"}, ""},
	{"QP_DEBUG_ADDRESS out of range", map[string]string{"QP_DEBUG_ADDRESS": "127.0.0.1:70000"}, ""},
	{"unknown tracing protocol", map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"jaeger"}}`}, stageTracing},
	{"bad OTEL_TRACES_SAMPLER_ARG", map[string]string{"OBSERVABILITY_CONFIG": obsTracingGRPC, "OTEL_TRACES_SAMPLER_ARG": "abc"}, stageTracing},
	{"bad OTEL_BSP_MAX_QUEUE_SIZE", map[string]string{"OBSERVABILITY_CONFIG": obsTracingGRPC, "OTEL_BSP_MAX_QUEUE_SIZE": "abc"}, stageTracing},
	{"bad OTLP traces endpoint", map[string]string{"OBSERVABILITY_CONFIG": obsTracingHTTP, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector"}, stageTracing},
	{"bad OTLP headers", map[string]string{"OBSERVABILITY_CONFIG": obsTracingGRPC, "OTEL_EXPORTER_OTLP_HEADERS": "secret-without-name"}, stageTracing},
	{"bad OTLP timeout", map[string]string{"OBSERVABILITY_CONFIG": obsTracingGRPC, "OTEL_EXPORTER_OTLP_TIMEOUT": "-5"}, stageTracing},
	{"bad tracing.endpoint", map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"grpc","endpoint":"http://"}}`}, stageTracing},
	{"METRICS_PROMETHEUS_PORT below 1024", map[string]string{"SERVING_REQUEST_METRICS_BACKEND": "prometheus", "METRICS_PROMETHEUS_PORT": "80"}, stageMetrics},
	{"bad requestMetrics.endpoint", map[string]string{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"prometheus","endpoint":"nope"}}`}, stageMetrics},
	{"bad METRICS_PROMETHEUS_TLS_CLIENT_AUTH", map[string]string{"SERVING_REQUEST_METRICS_BACKEND": "prometheus", "METRICS_PROMETHEUS_TLS_CLIENT_AUTH": "sometimes"}, stageMetrics},
	{"METRICS_PROMETHEUS_TLS_CERT without KEY", map[string]string{"SERVING_REQUEST_METRICS_BACKEND": "prometheus", "METRICS_PROMETHEUS_TLS_CERT": "/no/such/cert.pem"}, stageMetrics},
	{"bad OTEL_METRIC_EXPORT_INTERVAL", map[string]string{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"grpc"}}`, "OTEL_METRIC_EXPORT_INTERVAL": "abc"}, stageMetrics},
	{"bad OTEL_METRIC_EXPORT_TIMEOUT", map[string]string{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"grpc"}}`, "OTEL_METRIC_EXPORT_TIMEOUT": "0"}, stageMetrics},
	{"bad OTLP metrics compression", map[string]string{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"http/protobuf"}}`, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "zstd"}, stageMetrics},
	{"bad readiness probe JSON", map[string]string{"SERVING_READINESS_PROBE": `{"tcpSocket":`}, stageReadiness},
	{"exec readiness probe", map[string]string{"SERVING_READINESS_PROBE": `{"exec":{"command":["true"]}}`}, stageReadiness},
	{"single probe with multi-container probes", map[string]string{"ENABLE_MULTI_CONTAINER_PROBES": "true"}, stageReadiness},
	{"bad tracing and bad probe: tracing first", map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"jaeger"}}`, "SERVING_READINESS_PROBE": "{"}, stageTracing},
}

// badEnv is a bad case's environment on top of the Knative one, on free
// ports and with a quick drain, so that run, should it wrongly start, stops
// at once.
func badEnv(t *testing.T, changes map[string]string) map[string]string {
	env := withEnv(map[string]string{
		"QUEUE_SERVING_PORT": "0", "QP_ADMIN_PORT": "0", "QP_METRICS_PORT": "0", "QP_DEBUG_ADDRESS": "127.0.0.1:0",
		"QP_DRAIN_QUIET_PERIOD": "1ms", "QP_HIJACK_DRAIN_TIMEOUT": "0s",
	})
	logTo(t, env)
	for k, v := range changes {
		if v == unset {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return env
}

// runError runs run with the current environment and returns its error,
// failing the test if run got as far as listening.
func runError(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	listening := false
	err := run(ctx, runtimeDeps{clock: clock.RealClock{}, listening: func(map[string]string) {
		listening = true
		cancel()
	}})
	if listening {
		t.Errorf("run accepted the environment and listened")
	}
	return err
}

// TestPrintConfigErrorsAreStartupErrors: for every environment startup
// rejects, PrintConfig returns exactly run's error and writes nothing.
func TestPrintConfigErrorsAreStartupErrors(t *testing.T) {
	for _, tc := range badEnvCases {
		t.Run(tc.name, func(t *testing.T) {
			setCleanEnv(t, badEnv(t, tc.env))
			var out bytes.Buffer
			printErr := PrintConfig(&out)
			runErr := runError(t)
			switch {
			case runErr == nil:
				t.Fatalf("run returned nil; PrintConfig returned %v", printErr)
			case printErr == nil:
				t.Fatalf("PrintConfig accepted what run rejects with: %v", runErr)
			case printErr.Error() != runErr.Error():
				t.Errorf("PrintConfig's error differs from run's:\nPrintConfig: %v\nrun:         %v", printErr, runErr)
			}
			if out.Len() != 0 {
				t.Errorf("PrintConfig wrote %q along with its error", out.String())
			}
		})
	}
}

// TestCheckEnvMatchesSetup: checkEnv, which run calls first, rejects what
// the setup functions behind it (setupTracing, setupMetrics, newProber)
// reject, with their error: its glue reads the environment as they do.
func TestCheckEnvMatchesSetup(t *testing.T) {
	for _, tc := range badEnvCases {
		if tc.stage == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			setCleanEnv(t, badEnv(t, tc.env))
			cfg, err := loadConfig()
			if err != nil {
				t.Fatal(err)
			}
			obs, err := cfg.observability()
			if err != nil {
				t.Fatal(err)
			}
			_, stage, checkErr := checkEnv(cfg, obs)
			if checkErr == nil || stage != tc.stage {
				t.Fatalf("checkEnv = %q, %v; want an error at %q", stage, checkErr, tc.stage)
			}
			logger := zap.NewNop().Sugar()
			var setupErr error
			switch stage {
			case stageTracing:
				_, setupErr = setupTracing(cfg, obs, cfg.env(), logger)
			case stageMetrics:
				_, setupErr = setupMetrics(cfg, obs, cfg.env(), logger, nil)
			case stageReadiness:
				_, setupErr = newProber(cfg, logger)
			}
			if setupErr == nil || setupErr.Error() != checkErr.Error() {
				t.Errorf("checkEnv's error differs from the setup's:\ncheckEnv: %v\nsetup:    %v", checkErr, setupErr)
			}
		})
	}
}

// TestPrintConfigDeterministic: the same environment gives the same bytes.
func TestPrintConfigDeterministic(t *testing.T) {
	setCleanEnv(t, withEnv(map[string]string{
		"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"grpc","endpoint":"http://a:4317"},"requestMetrics":{"protocol":"prometheus"},"zzz":{"b":1,"a":2}}`,
	}))
	var first, second bytes.Buffer
	if err := PrintConfig(&first); err != nil {
		t.Fatal(err)
	}
	if err := PrintConfig(&second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("two runs differ:\n%s\n%s", first.String(), second.String())
	}
	if !strings.HasSuffix(first.String(), "}\n") {
		t.Errorf("output does not end with the document and a newline")
	}
}

// TestSpecFieldsNames: specFields names the variables of envSpecs as
// envconfig does (EnvVars asks envconfig), in the same order.
func TestSpecFieldsNames(t *testing.T) {
	var got []string
	seen := map[string]bool{}
	for _, spec := range envSpecs {
		for _, f := range specFields(reflect.New(reflect.TypeOf(spec)).Interface()) {
			if !seen[f.key] {
				seen[f.key] = true
				got = append(got, f.key)
			}
		}
	}
	var want []string
	for _, v := range EnvVars() {
		want = append(want, v.Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("specFields names\n%q\nenvconfig names\n%q", got, want)
	}
}
