package otlp

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const (
	srcKnativeMetrics = "OBSERVABILITY_CONFIG requestMetrics.endpoint"
	srcKnativeTraces  = "OBSERVABILITY_CONFIG tracing.endpoint"
)

func TestResolveConfigEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		sig      Signal
		protocol Protocol
		endpoint string
		env      map[string]string
		wantURL  string
		wantSrc  string
		wantErr  string
	}{
		// SDK defaults.
		{name: "grpc default", protocol: GRPC, wantURL: "https://localhost:4317", wantSrc: "default"},
		{name: "grpc default insecure", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"}, wantURL: "http://localhost:4317", wantSrc: "default"},
		{name: "http default", protocol: HTTPProtobuf, wantURL: "https://localhost:4318/v1/metrics", wantSrc: "default"},
		{name: "http default traces", sig: Traces, protocol: HTTPProtobuf, wantURL: "https://localhost:4318/v1/traces", wantSrc: "default"},
		{name: "http default insecure per signal", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "false", "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "TRUE"}, wantURL: "http://localhost:4318/v1/metrics", wantSrc: "default"},

		// Knative's configured endpoint, as WithEndpointURL reads it.
		{name: "knative host:port gets https", protocol: GRPC, endpoint: "collector:4317", wantURL: "https://collector:4317", wantSrc: srcKnativeMetrics},
		{name: "knative http is h2c", protocol: GRPC, endpoint: "http://collector.ns.svc:4317", wantURL: "http://collector.ns.svc:4317", wantSrc: srcKnativeMetrics},
		{name: "knative scheme beats INSECURE", protocol: GRPC, endpoint: "http://collector:4317", env: map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "false"}, wantURL: "http://collector:4317", wantSrc: srcKnativeMetrics},
		{name: "knative https without port", protocol: GRPC, endpoint: "https://collector", wantURL: "https://collector:443", wantSrc: srcKnativeMetrics},
		{name: "knative grpc path ignored", protocol: GRPC, endpoint: "http://collector:4317/x", wantURL: "http://collector:4317", wantSrc: srcKnativeMetrics},
		{name: "knative other scheme is plain text", protocol: GRPC, endpoint: "grpc://collector:4317", wantURL: "http://collector:4317", wantSrc: srcKnativeMetrics},
		{name: "knative http host:port keeps root path", protocol: HTTPProtobuf, endpoint: "collector:4318", wantURL: "https://collector:4318/", wantSrc: srcKnativeMetrics},
		{name: "knative http with path", protocol: HTTPProtobuf, endpoint: "collector.ns:4318/v1/metrics", wantURL: "https://collector.ns:4318/v1/metrics", wantSrc: srcKnativeMetrics},
		{name: "knative http URL as is", protocol: HTTPProtobuf, endpoint: "http://collector:4318/otlp/v1/metrics", wantURL: "http://collector:4318/otlp/v1/metrics", wantSrc: srcKnativeMetrics},
		{name: "knative traces", sig: Traces, protocol: HTTPProtobuf, endpoint: "http://jaeger:4318/v1/traces", wantURL: "http://jaeger:4318/v1/traces", wantSrc: srcKnativeTraces},
		{name: "knative bare IP:port does not parse", protocol: GRPC, endpoint: "10.0.0.1:4317", wantErr: `OBSERVABILITY_CONFIG requestMetrics.endpoint: "10.0.0.1:4317" is not a URL (prefix it with http:// or https://)`},
		{name: "knative traces bad", sig: Traces, protocol: GRPC, endpoint: "10.0.0.1:4317", wantErr: `OBSERVABILITY_CONFIG tracing.endpoint: "10.0.0.1:4317" is not a URL (prefix it with http:// or https://)`},
		{name: "knative host only", protocol: GRPC, endpoint: "collector", wantErr: `OBSERVABILITY_CONFIG requestMetrics.endpoint: "collector" has no host`},
		{name: "knative bad port", protocol: HTTPProtobuf, endpoint: "collector:port", wantErr: `OBSERVABILITY_CONFIG requestMetrics.endpoint: "collector:port" is not a URL`},

		// The environment wins over Knative's endpoint.
		{name: "env general grpc", protocol: GRPC, endpoint: "collector:4317", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317"}, wantURL: "http://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env per-signal wins", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://sig:4317"}, wantURL: "https://sig:4317", wantSrc: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
		{name: "env other signal ignored", protocol: GRPC, endpoint: "collector:4317", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:4317"}, wantURL: "https://collector:4317", wantSrc: srcKnativeMetrics},
		{name: "env traces per-signal", sig: Traces, protocol: GRPC, endpoint: "collector:4317", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:4317"}, wantURL: "http://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{name: "env blank still hides knative", protocol: GRPC, endpoint: "collector:4317", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, wantURL: "https://localhost:4317", wantSrc: "default"},
		{name: "env grpc host:port secure", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "env:4317"}, wantURL: "https://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env grpc host:port INSECURE decides", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "env:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, wantURL: "http://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env grpc per-signal INSECURE wins", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "env:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "false"}, wantURL: "https://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env grpc bare IP:port", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "10.0.0.1:4317", "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "true"}, wantURL: "http://10.0.0.1:4317", wantSrc: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
		{name: "env grpc IPv6", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "[::1]:4317"}, wantURL: "https://[::1]:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env grpc scheme beats INSECURE", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://env:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, wantURL: "https://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env grpc path dropped", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317/otlp"}, wantURL: "http://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env grpc no port", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://env"}, wantURL: "https://env:443", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env grpc scheme-relative", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "//env:4317"}, wantURL: "https://env:4317", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env http general appends signal path", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}, wantURL: "http://env:4318/v1/metrics", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env http general base path", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://env:4318/otlp/"}, wantURL: "https://env:4318/otlp/v1/metrics", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env http general traces", sig: Traces, protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}, wantURL: "http://env:4318/v1/traces", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env http per-signal as is", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://sig:4318/custom"}, wantURL: "http://sig:4318/custom", wantSrc: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
		{name: "env http per-signal root", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://sig:4318"}, wantURL: "http://sig:4318/", wantSrc: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
		{name: "env http scheme beats INSECURE", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://env:4318", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, wantURL: "https://env:4318/v1/metrics", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env trimmed", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": " http://env:4318 "}, wantURL: "http://env:4318/v1/metrics", wantSrc: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "env http needs scheme", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "env:4318"}, wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT: "env:4318" has scheme "env", not http or https`},
		{name: "env http scheme-relative", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "//env:4318"}, wantErr: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "//env:4318" is not an http:// or https:// URL`},
		{name: "env http bare IP", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "10.0.0.1:4318"}, wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT: "10.0.0.1:4318" is not a URL`},
		{name: "env no host", protocol: HTTPProtobuf, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http:///v1"}, wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT: "http:///v1" has no host`},
		{name: "env grpc unix", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "unix:///run/otel.sock"}, wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT: "unix:///run/otel.sock" has scheme "unix", not http or https`},
		{name: "env grpc bad port", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "env:port"}, wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT: "env:port" is not a URL or host:port`},
		{name: "env grpc general bad even when per-signal set", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "env:0", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://sig:4317"}, wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT: "env:0" is not a URL or host:port`},
		{name: "bad INSECURE", protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "1"}, wantErr: `OTEL_EXPORTER_OTLP_INSECURE: "1" is not true or false`},
		{name: "bad per-signal INSECURE", sig: Traces, protocol: GRPC, env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "yes"}, wantErr: `OTEL_EXPORTER_OTLP_TRACES_INSECURE: "yes" is not true or false`},
		{name: "bad protocol", protocol: "http/json", wantErr: `OBSERVABILITY_CONFIG requestMetrics.protocol: "http/json" is not grpc or http/protobuf`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.sig
			if sig == "" {
				sig = Metrics
			}
			cfg, err := ResolveConfig(sig, string(tt.protocol), tt.endpoint, envFunc(tt.env))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ResolveConfig error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal("ResolveConfig:", err)
			}
			if got := cfg.URL(); got != tt.wantURL {
				t.Errorf("URL() = %q, want %q", got, tt.wantURL)
			}
			if cfg.EndpointSource != tt.wantSrc {
				t.Errorf("EndpointSource = %q, want %q", cfg.EndpointSource, tt.wantSrc)
			}
			if cfg.Signal != sig || cfg.Protocol != tt.protocol {
				t.Errorf("Signal, Protocol = %q, %q", cfg.Signal, cfg.Protocol)
			}
		})
	}
}

func TestResolveConfigDefaults(t *testing.T) {
	cfg, err := ResolveConfig(Metrics, "grpc", "", envFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Signal: Metrics, Protocol: GRPC, Endpoint: "localhost:4317", EndpointSource: "default",
		Compression: NoCompression, Timeout: 10 * time.Second,
		UserAgent: "OTel Go OTLP over gRPC metrics exporter/1.47.0",
		Retry:     RetryConfig{InitialInterval: 5 * time.Second, MaxInterval: 30 * time.Second, MaxElapsedTime: time.Minute},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("ResolveConfig = %#v\nwant %#v", cfg, want)
	}
	for _, tt := range []struct {
		sig  Signal
		p    Protocol
		want string
	}{
		{Metrics, HTTPProtobuf, "OTel Go OTLP over HTTP/protobuf metrics exporter/1.43.0"},
		{Traces, GRPC, "OTel OTLP Exporter Go/1.47.0"},
		{Traces, HTTPProtobuf, "OTel OTLP Exporter Go/1.47.0"},
	} {
		cfg, err := ResolveConfig(tt.sig, string(tt.p), "", envFunc(nil))
		if err != nil || cfg.UserAgent != tt.want {
			t.Errorf("ResolveConfig(%s, %s).UserAgent = %q, %v; want %q", tt.sig, tt.p, cfg.UserAgent, err, tt.want)
		}
	}
	if _, err := ResolveConfig("logs", "grpc", "", envFunc(nil)); err == nil {
		t.Error(`ResolveConfig("logs") did not fail`)
	}
}

func TestResolveConfigSettings(t *testing.T) {
	tests := []struct {
		name     string
		sig      Signal
		protocol Protocol
		env      map[string]string
		check    func(t *testing.T, c Config)
		wantErr  string
	}{
		{
			name: "headers general",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2"},
			check: func(t *testing.T, c Config) {
				if want := []Header{{"a", "1"}, {"b", "2"}}; !reflect.DeepEqual(c.Headers, want) {
					t.Errorf("Headers = %q, want %q", c.Headers, want)
				}
			},
		},
		{
			name: "headers per-signal replace general",
			sig:  Traces,
			env:  map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "c=3", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "d=4"},
			check: func(t *testing.T, c Config) {
				if want := []Header{{"c", "3"}}; !reflect.DeepEqual(c.Headers, want) {
					t.Errorf("Headers = %q, want %q", c.Headers, want)
				}
			},
		},
		{
			name:    "headers bad, value not quoted",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_METRICS_HEADERS": "authorization=Bearer%zzsecret"},
			wantErr: "OTEL_EXPORTER_OTLP_METRICS_HEADERS: entry 1 has an invalid percent-encoding in its value",
		},
		{
			name: "binary header over grpc",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "trace-bin=%00"},
			check: func(t *testing.T, c Config) {
				if want := []Header{{"trace-bin", "\x00"}}; !reflect.DeepEqual(c.Headers, want) {
					t.Errorf("Headers = %q, want %q", c.Headers, want)
				}
			},
		},
		{
			name:     "binary header over http",
			protocol: HTTPProtobuf,
			env:      map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "trace-bin=%00"},
			wantErr:  "OTEL_EXPORTER_OTLP_HEADERS: the binary value of trace-bin cannot be sent over http/protobuf",
		},
		{
			name: "timeout",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"},
			check: func(t *testing.T, c Config) {
				if c.Timeout != 2500*time.Millisecond {
					t.Errorf("Timeout = %v", c.Timeout)
				}
			},
		},
		{
			name: "timeout per-signal wins, 0 means none",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "0"},
			check: func(t *testing.T, c Config) {
				if c.Timeout != 0 {
					t.Errorf("Timeout = %v", c.Timeout)
				}
			},
		},
		{name: "timeout not a number", env: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "abc"}, wantErr: `OTEL_EXPORTER_OTLP_TIMEOUT: "abc" is not a number of milliseconds`},
		{name: "timeout with unit", env: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, wantErr: `OTEL_EXPORTER_OTLP_TIMEOUT: "10s" is not a number of milliseconds`},
		{name: "timeout negative", sig: Traces, env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "-1"}, wantErr: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "-1" is not a number of milliseconds`},
		{name: "timeout overflows", env: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "9223372036854775"}, wantErr: `OTEL_EXPORTER_OTLP_TIMEOUT: "9223372036854775" is not a number of milliseconds`},
		{
			name: "compression gzip, per-signal none wins",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none"},
			check: func(t *testing.T, c Config) {
				if c.Compression != NoCompression {
					t.Errorf("Compression = %q", c.Compression)
				}
			},
		},
		{
			name: "compression gzip",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip"},
			check: func(t *testing.T, c Config) {
				if c.Compression != Gzip {
					t.Errorf("Compression = %q", c.Compression)
				}
			},
		},
		{name: "compression unknown", env: map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, wantErr: `OTEL_EXPORTER_OTLP_COMPRESSION: "zstd" is not gzip or none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.sig
			if sig == "" {
				sig = Metrics
			}
			p := tt.protocol
			if p == "" {
				p = GRPC
			}
			cfg, err := ResolveConfig(sig, string(p), "", envFunc(tt.env))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ResolveConfig error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal("ResolveConfig:", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestResolveConfigTLS(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "not.pem", []byte("hello"))
	missing := filepath.Join(dir, "missing.pem")
	pki2 := newTestPKI(t)

	tests := []struct {
		name     string
		protocol Protocol
		endpoint string
		env      map[string]string
		check    func(t *testing.T, c Config)
		wantErr  string
	}{
		{
			name: "no TLS settings",
			check: func(t *testing.T, c Config) {
				if c.TLS != nil || c.Insecure {
					t.Errorf("TLS = %v, Insecure = %v", c.TLS, c.Insecure)
				}
			},
		},
		{
			name: "certificate",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": pki.caFile},
			check: func(t *testing.T, c Config) {
				if c.TLS == nil || c.TLS.RootCAs == nil || !c.TLS.RootCAs.Equal(pki.roots) || len(c.TLS.Certificates) != 0 {
					t.Fatalf("TLS = %+v", c.TLS)
				}
				if c.CertificateFile != pki.caFile {
					t.Errorf("CertificateFile = %q", c.CertificateFile)
				}
			},
		},
		{
			name: "certificate per-signal wins",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": pki.caFile, "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": pki2.caFile},
			check: func(t *testing.T, c Config) {
				if c.CertificateFile != pki2.caFile || !c.TLS.RootCAs.Equal(pki2.roots) {
					t.Errorf("CertificateFile = %q", c.CertificateFile)
				}
			},
		},
		{
			name: "client certificate",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki.clientKeyFile},
			check: func(t *testing.T, c Config) {
				if c.TLS == nil || c.TLS.RootCAs != nil || len(c.TLS.Certificates) != 1 {
					t.Fatalf("TLS = %+v", c.TLS)
				}
				if c.ClientCertificateFile != pki.clientCertFile || c.ClientKeyFile != pki.clientKeyFile {
					t.Errorf("files = %q, %q", c.ClientCertificateFile, c.ClientKeyFile)
				}
			},
		},
		{
			name: "client certificate per-signal pair wins",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki.clientKeyFile,
				"OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE": pki2.clientCertFile, "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY": pki2.clientKeyFile,
			},
			check: func(t *testing.T, c Config) {
				if c.ClientCertificateFile != pki2.clientCertFile || len(c.TLS.Certificates) != 1 {
					t.Errorf("ClientCertificateFile = %q", c.ClientCertificateFile)
				}
			},
		},
		{
			name:     "grpc TLS settings win over http scheme",
			endpoint: "http://collector:4317",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": pki.caFile},
			check: func(t *testing.T, c Config) {
				if c.Insecure || c.TLS == nil {
					t.Errorf("Insecure = %v, TLS = %v", c.Insecure, c.TLS)
				}
			},
		},
		{
			name:     "http plain text with certificate",
			protocol: HTTPProtobuf,
			endpoint: "http://collector:4318/v1/metrics",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": pki.caFile},
			wantErr:  "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: is set but the endpoint http://collector:4318/v1/metrics is plain text (http)",
		},
		{name: "certificate missing", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": missing}, wantErr: "OTEL_EXPORTER_OTLP_CERTIFICATE: open " + missing + ": no such file or directory"},
		{name: "certificate not PEM", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": notPEM}, wantErr: `OTEL_EXPORTER_OTLP_CERTIFICATE: "` + notPEM + `" holds no PEM certificate`},
		{name: "general bad certificate even when per-signal set", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": notPEM, "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": pki.caFile}, wantErr: `OTEL_EXPORTER_OTLP_CERTIFICATE: "` + notPEM + `" holds no PEM certificate`},
		{name: "client key missing", env: map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile}, wantErr: "OTEL_EXPORTER_OTLP_CLIENT_KEY: must be set with OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
		{name: "client cert missing", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY": pki.clientKeyFile}, wantErr: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: must be set with OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY"},
		{name: "client pair mismatched", env: map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki2.clientKeyFile}, wantErr: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY: tls: private key does not match public key"},
		{name: "client key unreadable", env: map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": missing}, wantErr: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY: open " + missing + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.protocol
			if p == "" {
				p = GRPC
			}
			cfg, err := ResolveConfig(Metrics, string(p), tt.endpoint, envFunc(tt.env))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ResolveConfig error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal("ResolveConfig:", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestConfigString(t *testing.T) {
	pki := newTestPKI(t)
	cfg, err := ResolveConfig(Traces, "http/protobuf", "", envFunc(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           "https://collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":            "authorization=Bearer%20s3cr3t,x-tenant=acme",
		"OTEL_EXPORTER_OTLP_COMPRESSION":        "gzip",
		"OTEL_EXPORTER_OTLP_CERTIFICATE":        pki.caFile,
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":         pki.clientKeyFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.String()
	want := "protocol=http/protobuf url=https://collector:4318/v1/traces (from OTEL_EXPORTER_OTLP_ENDPOINT) compression=gzip timeout=10s" +
		" certificate=" + pki.caFile + " client_certificate=" + pki.clientCertFile + " client_key=" + pki.clientKeyFile +
		" headers=[authorization=<redacted> x-tenant=<redacted>]"
	if got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	for _, secret := range []string{"s3cr3t", "acme"} {
		if strings.Contains(got, secret) {
			t.Errorf("String() shows %q", secret)
		}
	}
}

func TestResolveConfigReadsOnlyOTLPVariables(t *testing.T) {
	var read []string
	getenv := func(k string) string {
		read = append(read, k)
		return os.Getenv("UNSET_FOR_TEST_" + k)
	}
	if _, err := ResolveConfig(Metrics, "grpc", "", getenv); err != nil {
		t.Fatal(err)
	}
	for _, k := range read {
		if !strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") || strings.Contains(k, "TRACES") {
			t.Errorf("read %s", k)
		}
	}
	if len(read) == 0 {
		t.Error("read no variable")
	}
}
