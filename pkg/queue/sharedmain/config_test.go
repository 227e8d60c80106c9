package sharedmain

import (
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// baseEnv is the environment Knative's reconciler sets (CONTRACT.md §1c),
// with the variables we ignore included, as a pod would have them.
func baseEnv() map[string]string {
	return map[string]string{
		"SERVING_NAMESPACE":                       "default",
		"SERVING_SERVICE":                         "hello",
		"SERVING_CONFIGURATION":                   "hello",
		"SERVING_REVISION":                        "hello-00001",
		"QUEUE_SERVING_PORT":                      "8012",
		"QUEUE_SERVING_TLS_PORT":                  "8112",
		"CONTAINER_CONCURRENCY":                   "0",
		"REVISION_TIMEOUT_SECONDS":                "300",
		"REVISION_RESPONSE_START_TIMEOUT_SECONDS": "0",
		"REVISION_IDLE_TIMEOUT_SECONDS":           "0",
		"SERVING_POD":                             "hello-00001-deployment-abc",
		"SERVING_POD_IP":                          "10.0.0.7",
		"SERVING_LOGGING_CONFIG":                  "",
		"SERVING_LOGGING_LEVEL":                   "",
		"USER_PORT":                               "8080",
		"SYSTEM_NAMESPACE":                        "knative-serving",
		"SERVING_READINESS_PROBE":                 `{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}`,
		"HOST_IP":                                 "10.0.0.1",
		"ENABLE_HTTP2_AUTO_DETECTION":             "false",
		"ENABLE_HTTP_FULL_DUPLEX":                 "false",
		"ROOT_CA":                                 "",
		"QUEUE_PROXY_TLS_MIN_VERSION":             "",
		"QUEUE_PROXY_TLS_MAX_VERSION":             "",
		"QUEUE_PROXY_TLS_CIPHER_SUITES":           "",
		"QUEUE_PROXY_TLS_CURVE_PREFERENCES":       "",
		"ENABLE_MULTI_CONTAINER_PROBES":           "false",
		"OBSERVABILITY_CONFIG":                    `{"tracing":{"protocol":"none"},"metrics":{"protocol":"none"},"runtime":{"profiling":"disabled","exportInterval":15000000000},"requestMetrics":{"protocol":"none"}}`,
	}
}

// configVars lists every variable the config struct reads, from its tags.
func configVars() []string {
	var names []string
	t := reflect.TypeOf(config{})
	for i := 0; i < t.NumField(); i++ {
		names = append(names, t.Field(i).Tag.Get("envconfig"))
	}
	return names
}

// setEnv replaces the process environment's queue-proxy variables with env
// for the duration of the test.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range append(configVars(), "HOST_IP", "ROOT_CA", "SYSTEM_NAMESPACE") {
		t.Setenv(k, "") // registers restoration
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestLoadConfigKnativeEnv(t *testing.T) {
	setEnv(t, baseEnv())
	c, err := loadConfig()
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	want := Env{"default", "hello", "hello", "hello-00001", "hello-00001-deployment-abc", "10.0.0.7"}
	if got := c.env(); got != want {
		t.Errorf("env() = %+v, want %+v", got, want)
	}
	if c.DrainQuietPeriod != 30*time.Second || c.HijackDrainTimeout != 60*time.Second ||
		c.AdminPort != "8022" || c.MetricsPort != "9090" || c.ProfilingPort != "8008" {
		t.Errorf("defaults = quiet %v hijack %v admin %s metrics %s profiling %s",
			c.DrainQuietPeriod, c.HijackDrainTimeout, c.AdminPort, c.MetricsPort, c.ProfilingPort)
	}
	overall, start, idle := c.timeouts()
	if overall != 300*time.Second || start != 0 || idle != 0 {
		t.Errorf("timeouts() = %v %v %v", overall, start, idle)
	}
}

func TestLoadConfig115Env(t *testing.T) {
	env := baseEnv()
	delete(env, "OBSERVABILITY_CONFIG")
	for k, v := range map[string]string{
		"ENABLE_PROFILING":                                 "true",
		"SERVING_REQUEST_LOG_TEMPLATE":                     "{{.Request.URL}}",
		"SERVING_ENABLE_REQUEST_LOG":                       "true",
		"SERVING_ENABLE_PROBE_REQUEST_LOG":                 "false",
		"SERVING_REQUEST_METRICS_BACKEND":                  "prometheus",
		"SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS": "5",
		"METRICS_COLLECTOR_ADDRESS":                        "",
		"METRICS_DOMAIN":                                   "knative.dev/internal/serving",
		"TRACING_CONFIG_BACKEND":                           "zipkin",
		"TRACING_CONFIG_ZIPKIN_ENDPOINT":                   "http://zipkin:9411/api/v2/spans",
		"TRACING_CONFIG_DEBUG":                             "false",
		"TRACING_CONFIG_SAMPLE_RATE":                       "0.1",
	} {
		env[k] = v
	}
	setEnv(t, env)
	c, err := loadConfig()
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if !c.EnableProfiling || !c.ServingEnableRequestLog || c.ServingRequestMetricsBackend != "prometheus" ||
		c.ServingRequestMetricsReportingPeriodSeconds != 5 || c.TracingConfigSampleRate != 0.1 ||
		c.TracingConfigZipkinEndpoint != "http://zipkin:9411/api/v2/spans" {
		t.Errorf("1.15 variables not parsed: %+v", c)
	}
	obs, err := c.observability()
	if err != nil || !obs.profiling {
		t.Errorf("observability() = %+v, %v; want profiling on", obs, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := []struct {
		name    string
		change  map[string]string
		unset   []string
		wantErr string
	}{
		{name: "missing namespace", unset: []string{"SERVING_NAMESPACE"}, wantErr: "required key SERVING_NAMESPACE missing value"},
		{name: "missing logging config", unset: []string{"SERVING_LOGGING_CONFIG"}, wantErr: "required key SERVING_LOGGING_CONFIG missing value"},
		{name: "empty int", change: map[string]string{"CONTAINER_CONCURRENCY": ""}, wantErr: "CONTAINER_CONCURRENCY"},
		{name: "non-numeric int", change: map[string]string{"REVISION_TIMEOUT_SECONDS": "ten"}, wantErr: "REVISION_TIMEOUT_SECONDS"},
		{name: "empty bool", change: map[string]string{"ENABLE_HTTP_FULL_DUPLEX": ""}, wantErr: "ENABLE_HTTP_FULL_DUPLEX"},
		{name: "bad bool", change: map[string]string{"ENABLE_MULTI_CONTAINER_PROBES": "yes"}, wantErr: "ENABLE_MULTI_CONTAINER_PROBES"},
		{name: "bad float", change: map[string]string{"TRACING_CONFIG_SAMPLE_RATE": "half"}, wantErr: "TRACING_CONFIG_SAMPLE_RATE"},
		{name: "port not a number", change: map[string]string{"USER_PORT": "http"}, wantErr: `USER_PORT: "http" is not a port number`},
		{name: "port out of range", change: map[string]string{"QUEUE_SERVING_PORT": "70000"}, wantErr: "QUEUE_SERVING_PORT"},
		{name: "negative timeout", change: map[string]string{"REVISION_IDLE_TIMEOUT_SECONDS": "-1"}, wantErr: "REVISION_IDLE_TIMEOUT_SECONDS: -1 is negative"},
		{name: "bad duration", change: map[string]string{"QP_DRAIN_QUIET_PERIOD": "soon"}, wantErr: "QP_DRAIN_QUIET_PERIOD"},
		{name: "zero quiet period", change: map[string]string{"QP_DRAIN_QUIET_PERIOD": "0s"}, wantErr: "QP_DRAIN_QUIET_PERIOD: must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv()
			for _, k := range tc.unset {
				delete(env, k)
			}
			for k, v := range tc.change {
				env[k] = v
			}
			setEnv(t, env)
			_, err := loadConfig()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("loadConfig() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadConfigEmptyStringsAccepted(t *testing.T) {
	env := baseEnv()
	env["SERVING_CONFIGURATION"] = "" // required, but may be empty
	delete(env, "SERVING_SERVICE")    // optional
	setEnv(t, env)
	c, err := loadConfig()
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c.ServingConfiguration != "" || c.ServingService != "" {
		t.Errorf("got configuration %q service %q, want both empty", c.ServingConfiguration, c.ServingService)
	}
}

func TestParseObservabilityConfig(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		check   func(ObservabilityConfig) bool
		wantErr bool
	}{
		{name: "empty is default", in: "", check: func(c ObservabilityConfig) bool {
			return reflect.DeepEqual(c, DefaultObservabilityConfig())
		}},
		{name: "missing fields keep defaults", in: `{"runtime":{"profiling":"enabled"}}`, check: func(c ObservabilityConfig) bool {
			return c.Runtime.Profiling == "enabled" && c.Runtime.ExportInterval == 15*time.Second &&
				c.RequestLogTemplate == DefaultRequestLogTemplate && c.Tracing.Protocol == "none"
		}},
		{name: "request log and metrics", in: `{"enableRequestLog":true,"requestLogTemplate":"{{.Request.Method}}","requestMetrics":{"protocol":"prometheus","exportInterval":5000000000}}`,
			check: func(c ObservabilityConfig) bool {
				return c.EnableRequestLog && c.RequestLogTemplate == "{{.Request.Method}}" &&
					c.RequestMetrics.Protocol == "prometheus" && c.RequestMetrics.ExportInterval == 5*time.Second
			}},
		{name: "unknown fields ignored", in: `{"somethingNew":{"a":1},"tracing":{"protocol":"grpc","endpoint":"c:4317","samplingRate":0.5}}`,
			check: func(c ObservabilityConfig) bool {
				return c.Tracing == TracingConfig{Protocol: "grpc", Endpoint: "c:4317", SamplingRate: 0.5}
			}},
		{name: "malformed", in: `{"tracing":`, wantErr: true},
		{name: "wrong type", in: `{"enableRequestLog":"yes"}`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseObservabilityConfig(tc.in)
			if tc.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "OBSERVABILITY_CONFIG: failed to parse") {
					t.Fatalf("error = %v, want an OBSERVABILITY_CONFIG parse error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !tc.check(c) {
				t.Errorf("config %+v does not match expectations", c)
			}
		})
	}
}

func FuzzParseObservabilityConfig(f *testing.F) {
	for _, s := range []string{"", "{}", baseEnv()["OBSERVABILITY_CONFIG"], `{"runtime":{"exportInterval":-1}}`, `[]`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseObservabilityConfig(s)
		if err != nil {
			if !reflect.DeepEqual(c, DefaultObservabilityConfig()) {
				t.Errorf("on error the result must be the defaults, got %+v", c)
			}
			return
		}
		if s == "" && !reflect.DeepEqual(c, DefaultObservabilityConfig()) {
			t.Errorf("empty input must give the defaults")
		}
	})
}

func TestSelectGeneration(t *testing.T) {
	tests := []struct {
		forced, obsConfig string
		want              *pkgobs.Generation
		reason            string
	}{
		{"", "", pkgobs.Generation115, "OBSERVABILITY_CONFIG is not set"},
		{"auto", "", pkgobs.Generation115, "OBSERVABILITY_CONFIG is not set"},
		{"auto", `{"tracing":{"protocol":"none"}}`, pkgobs.GenerationNewest, "OBSERVABILITY_CONFIG is set"},
		{"", "{}", pkgobs.GenerationNewest, "OBSERVABILITY_CONFIG is set"},
		{"1.15", "{}", pkgobs.Generation115, "QP_OBSERVABILITY_GENERATION=1.15"},
		{"newest", "", pkgobs.GenerationNewest, "QP_OBSERVABILITY_GENERATION=newest"},
	}
	for _, tc := range tests {
		gen, reason := selectGeneration(tc.forced, tc.obsConfig)
		if gen != tc.want || reason != tc.reason {
			t.Errorf("selectGeneration(%q, %q) = %s, %q; want %s, %q", tc.forced, tc.obsConfig, gen.Name, reason, tc.want.Name, tc.reason)
		}
	}
}

func TestObservabilityGenerationValidation(t *testing.T) {
	for _, v := range []string{"", "auto", "1.15", "newest"} {
		c := config{ObservabilityGeneration: v, QueueServingPort: "1", QueueServingTLSPort: "1", UserPort: "1", ProfilingPort: "1", AdminPort: "1", MetricsPort: "1", DrainQuietPeriod: 1}
		if err := c.validate(); err != nil {
			t.Errorf("QP_OBSERVABILITY_GENERATION=%q: %v", v, err)
		}
	}
	for _, v := range []string{"Newest", "1.19", "none"} {
		c := config{ObservabilityGeneration: v, QueueServingPort: "1", QueueServingTLSPort: "1", UserPort: "1", ProfilingPort: "1", AdminPort: "1", MetricsPort: "1", DrainQuietPeriod: 1}
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), "QP_OBSERVABILITY_GENERATION: ") {
			t.Errorf("QP_OBSERVABILITY_GENERATION=%q: %v, want an error naming the variable", v, err)
		}
	}
}
