package otlp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"
)

// The exporter configuration: what Knative's OBSERVABILITY_CONFIG says
// (protocol, endpoint) merged with the OTEL_EXPORTER_OTLP_* environment the
// way Knative's queue-proxy and the OpenTelemetry Go exporters (v1.47.0)
// merge them. ResolveConfig is the only reader of the environment; a
// Config is plain data that NewClient turns into a Client.

// Signal is the kind of telemetry a Client exports.
type Signal string

// Signals.
const (
	Metrics Signal = "metrics"
	Traces  Signal = "traces"
)

// Protocol is the OTLP transport.
type Protocol string

// Protocols, spelled as in OBSERVABILITY_CONFIG.
const (
	GRPC         Protocol = "grpc"
	HTTPProtobuf Protocol = "http/protobuf"
)

// Compression is the request body encoding.
type Compression string

// Compressions, spelled as in OTEL_EXPORTER_OTLP_COMPRESSION.
const (
	NoCompression Compression = "none"
	Gzip          Compression = "gzip"
)

// Defaults of the OpenTelemetry Go exporters.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultInitialInterval = 5 * time.Second
	DefaultMaxInterval     = 30 * time.Second
	DefaultMaxElapsedTime  = time.Minute

	defaultGRPCEndpoint = "localhost:4317"
	defaultHTTPEndpoint = "localhost:4318"
)

// Where Config.EndpointSource says the endpoint came from when neither
// OBSERVABILITY_CONFIG nor the environment gave one.
const sourceDefault = "default"

// RetryConfig bounds the retries of one Export. Zero durations take the
// defaults (5 s, 30 s, 1 min); a negative MaxElapsedTime means no bound but
// the caller's context.
type RetryConfig struct {
	// Disabled makes every failure final.
	Disabled bool
	// InitialInterval is the backoff after the first failure; it grows by
	// half at each retry up to MaxInterval, and each wait is randomized by
	// ±50%. A delay the collector asks for (Retry-After, RetryInfo) is
	// honoured when longer.
	InitialInterval, MaxInterval time.Duration
	// MaxElapsedTime bounds the time from the first attempt until the
	// start of the last: no retry starts later.
	MaxElapsedTime time.Duration
}

// Config is a resolved exporter configuration. String() prints it for the
// startup log without secrets.
type Config struct {
	Signal   Signal
	Protocol Protocol
	// Endpoint is the collector's host:port.
	Endpoint string
	// Path is the URL path of HTTP exports (gRPC uses the service method).
	Path string
	// Insecure means plain text: HTTP/1.1, or h2c with prior knowledge for
	// gRPC. Otherwise TLS.
	Insecure bool
	// EndpointSource names what chose the endpoint: the environment
	// variable, the OBSERVABILITY_CONFIG field, or "default".
	EndpointSource string

	Headers     []Header
	Compression Compression
	// Timeout bounds each attempt; 0 means none.
	Timeout   time.Duration
	UserAgent string

	// TLS is the client TLS configuration (trusted roots and client
	// certificate); nil means the system roots and no client certificate.
	TLS *tls.Config
	// The files TLS was read from, for String().
	CertificateFile, ClientCertificateFile, ClientKeyFile string

	Retry RetryConfig
	// Clock measures elapsed time and waits between retries; nil means
	// the real clock.
	Clock clock.Clock
}

// URL is where exports go: the HTTP endpoint URL, or the gRPC server's base
// URL.
func (c Config) URL() string {
	scheme := "https://"
	if c.Insecure {
		scheme = "http://"
	}
	if c.Protocol == GRPC {
		return scheme + c.Endpoint
	}
	return scheme + c.Endpoint + c.Path
}

// String describes the configuration for logs; header values are redacted.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("protocol=")
	b.WriteString(string(c.Protocol))
	b.WriteString(" url=")
	b.WriteString(c.URL())
	b.WriteString(" (from ")
	b.WriteString(c.EndpointSource)
	b.WriteString(") compression=")
	b.WriteString(string(c.Compression))
	b.WriteString(" timeout=")
	b.WriteString(c.Timeout.String())
	if c.CertificateFile != "" {
		b.WriteString(" certificate=")
		b.WriteString(c.CertificateFile)
	}
	if c.ClientCertificateFile != "" {
		b.WriteString(" client_certificate=")
		b.WriteString(c.ClientCertificateFile)
		b.WriteString(" client_key=")
		b.WriteString(c.ClientKeyFile)
	}
	if len(c.Headers) > 0 {
		b.WriteString(" headers=")
		b.WriteString(redactedHeaders(c.Headers))
	}
	return b.String()
}

// configError is a bad setting: `NAME: "value" reason`, or `NAME: reason`
// when the value is secret.
func configError(name, value, reason string) error {
	if value == "" {
		return errors.New(name + ": " + reason)
	}
	return errors.New(name + ": " + strconv.Quote(value) + " " + reason)
}

// knativeField names the OBSERVABILITY_CONFIG section holding a signal's
// protocol and endpoint in the queue-proxy.
func knativeField(sig Signal) string {
	if sig == Traces {
		return "OBSERVABILITY_CONFIG tracing"
	}
	return "OBSERVABILITY_CONFIG requestMetrics"
}

// envReader reads OTEL_EXPORTER_OTLP_<KEY> and its per-signal variant
// OTEL_EXPORTER_OTLP_<SIGNAL>_<KEY>. Values are trimmed, and an empty value
// counts as unset, as in the OpenTelemetry exporters.
type envReader struct {
	getenv func(string) string
	sig    string // "METRICS" or "TRACES"
}

func (e envReader) general(key string) string { return "OTEL_EXPORTER_OTLP_" + key }
func (e envReader) signal(key string) string  { return "OTEL_EXPORTER_OTLP_" + e.sig + "_" + key }
func (e envReader) get(name string) string    { return strings.TrimSpace(e.getenv(name)) }

// each calls fn for the general then the per-signal variable of key, when
// set, so that the per-signal value is applied last and wins.
func (e envReader) each(key string, fn func(name, value string) error) error {
	for _, name := range [2]string{e.general(key), e.signal(key)} {
		if v := e.get(name); v != "" {
			if err := fn(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// ResolveConfig returns the exporter configuration of sig. protocol and
// endpoint are OBSERVABILITY_CONFIG's requestMetrics (Metrics) or tracing
// (Traces) settings; getenv reads the environment (os.Getenv).
//
// The endpoint:
//   - If OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT
//     is set, the configured endpoint is ignored. The per-signal variable
//     wins and is used as is (an empty path is "/"); the general one is a
//     base URL to which http/protobuf appends /v1/<signal>. For gRPC the
//     path is ignored and a scheme-less host:port is accepted.
//   - Otherwise the configured endpoint, as Knative passes it to the
//     exporters' WithEndpointURL: "https://" is prepended when it parses as
//     an opaque URL (host:port); an empty path is "/" (no /v1/<signal> is
//     appended); anything but https is plain text.
//   - Otherwise the exporters' defaults: localhost:4317 for gRPC,
//     localhost:4318/v1/<signal> for http/protobuf.
//
// Transport security: a URL's http or https scheme decides; without one,
// OTEL_EXPORTER_OTLP_[<SIGNAL>_]INSECURE=true means plain text (default
// TLS). As in the exporters, gRPC uses TLS whenever a certificate variable
// is set, and http/protobuf refuses certificates with a plain-text URL.
//
// HEADERS, TIMEOUT (milliseconds), COMPRESSION (gzip or none),
// CERTIFICATE, CLIENT_CERTIFICATE and CLIENT_KEY (file paths) follow, the
// per-signal variable winning. Every bad value is an error naming its
// variable; certificate files are read now.
func ResolveConfig(sig Signal, protocol, endpoint string, getenv func(string) string) (Config, error) {
	cfg := Config{
		Signal:      sig,
		Protocol:    Protocol(protocol),
		Compression: NoCompression,
		Timeout:     DefaultTimeout,
		Retry: RetryConfig{
			InitialInterval: DefaultInitialInterval,
			MaxInterval:     DefaultMaxInterval,
			MaxElapsedTime:  DefaultMaxElapsedTime,
		},
	}
	var env envReader
	switch sig {
	case Metrics:
		env = envReader{getenv: getenv, sig: "METRICS"}
	case Traces:
		env = envReader{getenv: getenv, sig: "TRACES"}
	default:
		return Config{}, errors.New("otlp: unknown signal " + strconv.Quote(string(sig)))
	}
	if cfg.Protocol != GRPC && cfg.Protocol != HTTPProtobuf {
		return Config{}, configError(knativeField(sig)+".protocol", protocol, "is not grpc or http/protobuf")
	}
	cfg.UserAgent = userAgent(sig, cfg.Protocol)

	insecure, err := resolveInsecure(env)
	if err != nil {
		return Config{}, err
	}
	if err := resolveEndpoint(&cfg, env, endpoint, insecure); err != nil {
		return Config{}, err
	}
	if err := resolveSettings(&cfg, env); err != nil {
		return Config{}, err
	}
	if err := resolveTLS(&cfg, env); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// userAgent is the User-Agent of the OpenTelemetry Go exporters v1.47.0
// (whose otlpmetrichttp still reports version 1.43.0).
func userAgent(sig Signal, p Protocol) string {
	switch {
	case sig == Traces:
		return "OTel OTLP Exporter Go/1.47.0"
	case p == GRPC:
		return "OTel Go OTLP over gRPC metrics exporter/1.47.0"
	default:
		return "OTel Go OTLP over HTTP/protobuf metrics exporter/1.43.0"
	}
}

// resolveInsecure reads INSECURE: nil when unset.
func resolveInsecure(env envReader) (*bool, error) {
	var insecure *bool
	err := env.each("INSECURE", func(name, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return configError(name, v, "is not true or false")
		}
		insecure = &b
		return nil
	})
	return insecure, err
}

func parseBool(v string) (bool, error) {
	switch {
	case strings.EqualFold(v, "true"):
		return true, nil
	case strings.EqualFold(v, "false"):
		return false, nil
	}
	return false, errors.New("not a bool")
}

func resolveEndpoint(cfg *Config, env envReader, configured string, insecure *bool) error {
	generalName, signalName := env.general("ENDPOINT"), env.signal("ENDPOINT")
	// Knative tests the raw values: set but blank still hides the
	// configured endpoint.
	if env.getenv(generalName) != "" || env.getenv(signalName) != "" {
		cfg.EndpointSource = sourceDefault
		setDefaultEndpoint(cfg, insecure)
		return env.each("ENDPOINT", func(name, v string) error {
			cfg.EndpointSource = name
			return envEndpoint(cfg, name, v, name == signalName, insecure)
		})
	}
	if configured != "" {
		return knativeEndpoint(cfg, configured)
	}
	cfg.EndpointSource = sourceDefault
	setDefaultEndpoint(cfg, insecure)
	return nil
}

func setDefaultEndpoint(cfg *Config, insecure *bool) {
	cfg.Endpoint = defaultGRPCEndpoint
	if cfg.Protocol == HTTPProtobuf {
		cfg.Endpoint = defaultHTTPEndpoint
		cfg.Path = "/v1/" + string(cfg.Signal)
	}
	cfg.Insecure = insecure != nil && *insecure
}

// knativeEndpoint applies OBSERVABILITY_CONFIG's endpoint as Knative does.
func knativeEndpoint(cfg *Config, v string) error {
	name := knativeField(cfg.Signal) + ".endpoint"
	u, err := url.Parse(v)
	if err != nil {
		return configError(name, v, "is not a URL (prefix it with http:// or https://)")
	}
	if u.Opaque != "" {
		if u, err = url.Parse("https://" + v); err != nil {
			return configError(name, v, "is not a URL")
		}
	}
	if u.Host == "" {
		return configError(name, v, "has no host")
	}
	cfg.EndpointSource = name
	cfg.Endpoint = u.Host
	cfg.Path = u.Path
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	cfg.Insecure = u.Scheme != "https"
	if cfg.Protocol == GRPC {
		cfg.Path = ""
		cfg.Endpoint = withDefaultPort(cfg.Endpoint)
	}
	if !validHostPort(withDefaultPort(cfg.Endpoint)) {
		return configError(name, v, "has no valid host:port")
	}
	return nil
}

// envEndpoint applies an OTEL_EXPORTER_OTLP_[<SIGNAL>_]ENDPOINT value.
func envEndpoint(cfg *Config, name, v string, perSignal bool, insecure *bool) error {
	u, err := url.Parse(v)
	if cfg.Protocol == GRPC && (err != nil || u.Opaque != "") {
		// A gRPC target without a scheme: host:port.
		if !validHostPort(v) {
			return configError(name, v, "is not a URL or host:port")
		}
		cfg.Endpoint = v
		cfg.Insecure = insecure != nil && *insecure
		return nil
	}
	if err != nil {
		return configError(name, v, "is not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		cfg.Insecure = true
	case "https":
		cfg.Insecure = false
	case "":
		if cfg.Protocol == HTTPProtobuf {
			return configError(name, v, "is not an http:// or https:// URL")
		}
		// The gRPC exporters join host and path into the target.
		target := withDefaultPort(strings.TrimPrefix(path.Join(u.Host, u.Path), "/"))
		if !validHostPort(target) {
			return configError(name, v, "is not a URL or host:port")
		}
		cfg.Endpoint = target
		cfg.Insecure = insecure != nil && *insecure
		return nil
	default:
		return configError(name, v, "has scheme "+strconv.Quote(u.Scheme)+", not http or https")
	}
	if u.Host == "" {
		return configError(name, v, "has no host")
	}
	cfg.Endpoint = u.Host
	switch {
	case cfg.Protocol == GRPC:
		cfg.Endpoint = withDefaultPort(cfg.Endpoint)
	case perSignal:
		cfg.Path = u.Path
		if cfg.Path == "" {
			cfg.Path = "/"
		}
	default:
		cfg.Path = path.Join("/", u.Path, "v1", string(cfg.Signal))
	}
	return nil
}

// validHostPort reports whether s is host:port with a non-empty host and a
// port number.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

// withDefaultPort adds gRPC's default port, 443, to a target without one.
func withDefaultPort(hostport string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), "443")
}

// resolveSettings reads HEADERS, TIMEOUT and COMPRESSION.
func resolveSettings(cfg *Config, env envReader) error {
	if err := env.each("HEADERS", func(name, v string) error {
		hs, err := ParseHeaders(v)
		if err != nil {
			return configError(name, "", err.Error())
		}
		for _, h := range hs {
			if cfg.Protocol == HTTPProtobuf && !validHeaderValue(h.Value) {
				return configError(name, "", "the binary value of "+h.Name+" cannot be sent over http/protobuf")
			}
		}
		cfg.Headers = hs
		return nil
	}); err != nil {
		return err
	}
	if err := env.each("TIMEOUT", func(name, v string) error {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 || ms > int64(1<<63-1)/int64(time.Millisecond) {
			return configError(name, v, "is not a number of milliseconds")
		}
		cfg.Timeout = time.Duration(ms) * time.Millisecond
		return nil
	}); err != nil {
		return err
	}
	return env.each("COMPRESSION", func(name, v string) error {
		switch c := Compression(v); c {
		case Gzip, NoCompression:
			cfg.Compression = c
			return nil
		}
		return configError(name, v, "is not gzip or none")
	})
}

// resolveTLS reads CERTIFICATE and the CLIENT_CERTIFICATE / CLIENT_KEY pair.
func resolveTLS(cfg *Config, env envReader) error {
	var roots *x509.CertPool
	var set string // the first certificate variable set, for errors
	if err := env.each("CERTIFICATE", func(name, file string) error {
		pem, err := os.ReadFile(file)
		if err != nil {
			return configError(name, "", err.Error())
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return configError(name, file, "holds no PEM certificate")
		}
		cfg.CertificateFile = file
		set = name
		return nil
	}); err != nil {
		return err
	}
	var certs []tls.Certificate
	for _, pair := range [2][2]string{
		{env.general("CLIENT_CERTIFICATE"), env.general("CLIENT_KEY")},
		{env.signal("CLIENT_CERTIFICATE"), env.signal("CLIENT_KEY")},
	} {
		certFile, keyFile := env.get(pair[0]), env.get(pair[1])
		switch {
		case certFile == "" && keyFile == "":
			continue
		case certFile == "":
			return configError(pair[0], "", "must be set with "+pair[1])
		case keyFile == "":
			return configError(pair[1], "", "must be set with "+pair[0])
		}
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			return configError(pair[0]+", "+pair[1], "", err.Error())
		}
		certs = []tls.Certificate{cert}
		if set == "" {
			set = pair[0]
		}
		cfg.ClientCertificateFile, cfg.ClientKeyFile = certFile, keyFile
	}
	if roots == nil && certs == nil {
		return nil
	}
	if cfg.Insecure {
		if cfg.Protocol == HTTPProtobuf {
			return configError(set, "", "is set but the endpoint "+cfg.URL()+" is plain text (http)")
		}
		// The gRPC exporters let TLS credentials win over "insecure".
		cfg.Insecure = false
	}
	cfg.TLS = &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12}
	return nil
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
