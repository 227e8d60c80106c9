package sharedmain

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"

	"github.com/queue-proxy/queue-proxy/pkg/queue/certificate"
	"github.com/queue-proxy/queue-proxy/pkg/tlsconfig"
)

// userMetricsTLSPrefix starts the names of the user-metrics TLS policy
// variables (METRICS_PROMETHEUS_TLS_MIN_VERSION, ...), as in Knative.
const userMetricsTLSPrefix = "METRICS_PROMETHEUS_"

// The user-metrics TLS variables, for error messages.
const (
	envUserMetricsTLSCert         = userMetricsTLSPrefix + "TLS_CERT"
	envUserMetricsTLSKey          = userMetricsTLSPrefix + "TLS_KEY"
	envUserMetricsTLSClientAuth   = userMetricsTLSPrefix + "TLS_CLIENT_AUTH"
	envUserMetricsTLSClientCAFile = userMetricsTLSPrefix + "TLS_CLIENT_CA_FILE"
)

// Values of METRICS_PROMETHEUS_TLS_CLIENT_AUTH; empty means none.
const (
	userMetricsClientAuthNone     = "none"
	userMetricsClientAuthOptional = "optional"
	userMetricsClientAuthRequire  = "require"
)

// userMetricsTLSEnv is the environment of HTTPS on the user-metrics
// (Prometheus) server (CONTRACT.md §1b). Knative reads these with
// os.Getenv, so an empty value counts as unset. The policy variables are
// parsed only when HTTPS is on, as Knative does.
type userMetricsTLSEnv struct {
	Cert             string `envconfig:"METRICS_PROMETHEUS_TLS_CERT" desc:"PEM certificate (chain) file of the request-metrics (Prometheus) server. With METRICS_PROMETHEUS_TLS_KEY it turns HTTPS on for that server; set both or neither. The pair is reloaded when the files change. Read only when request metrics are on."`
	Key              string `envconfig:"METRICS_PROMETHEUS_TLS_KEY" desc:"PEM private key file for METRICS_PROMETHEUS_TLS_CERT; set both or neither."`
	ClientAuth       string `envconfig:"METRICS_PROMETHEUS_TLS_CLIENT_AUTH" desc:"Client certificates on the HTTPS request-metrics server: none (not asked for), optional (verified against METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE when a client sends one; clients without one are served) or require (a verified client certificate is needed). Case-insensitive; empty means none. Anything but none needs HTTPS and a client CA file."`
	ClientCAFile     string `envconfig:"METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE" desc:"PEM file of the CAs that client certificates must chain to; required with METRICS_PROMETHEUS_TLS_CLIENT_AUTH optional or require, an error otherwise. Read once at startup."`
	MinVersion       string `envconfig:"METRICS_PROMETHEUS_TLS_MIN_VERSION" default:"1.3" desc:"Minimum TLS version of the HTTPS request-metrics server: 1.2 or 1.3. Empty means 1.3. Read only when HTTPS is on."`
	MaxVersion       string `envconfig:"METRICS_PROMETHEUS_TLS_MAX_VERSION" desc:"Maximum TLS version of the HTTPS request-metrics server: 1.2 or 1.3. Empty means Go's default (1.3). Read only when HTTPS is on."`
	CipherSuites     string `envconfig:"METRICS_PROMETHEUS_TLS_CIPHER_SUITES" desc:"Comma-separated TLS 1.2 cipher suites of the HTTPS request-metrics server, by their Go names (crypto/tls CipherSuites, secure ones only). With TLS 1.2 allowed, the list must contain TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (HTTP/2). Empty means Go's defaults. Read only when HTTPS is on."`
	CurvePreferences string `envconfig:"METRICS_PROMETHEUS_TLS_CURVE_PREFERENCES" desc:"Comma-separated key exchange groups of the HTTPS request-metrics server: CurveP256, CurveP384, CurveP521, X25519, X25519MLKEM768, P-256, P-384, P-521. Empty means Go's defaults. Read only when HTTPS is on."`
}

func init() { envSpecs = append(envSpecs, userMetricsTLSEnv{}) }

// userMetricsTLS returns the server TLS configuration of the user-metrics
// (Prometheus) server from the METRICS_PROMETHEUS_TLS_* variables, and a
// func that stops its certificate watcher. It returns a nil config (plain
// HTTP) and a no-op stop when METRICS_PROMETHEUS_TLS_CERT and _KEY are both
// unset, and a non-nil stop in every case.
//
// The rules are Knative's (knative.dev/pkg observability/metrics/prometheus):
// the certificate and key go together; CLIENT_AUTH is none, optional
// (tls.VerifyClientCertIfGiven: a client certificate, when sent, must chain
// to the client CAs) or require (tls.RequireAndVerifyClientCert); optional
// and require need CLIENT_CA_FILE, which is an error with none or without
// HTTPS; the policy variables are read only when HTTPS is on. Every error
// names the variable at fault.
//
// Three things differ. Two make a bad setup fail at startup rather than
// when serving starts: the certificate and key are loaded here (Knative
// loads them in ListenAndServeTLS), and a cipher list that would stop
// net/http's HTTP/2 server from serving is refused here. The third: the
// certificate is reloaded when its files change (certificate.Watcher);
// Knative loads it once. The client CAs are read once, as in Knative.
//
// The config offers h2 and http/1.1 by ALPN, as Knative's ListenAndServeTLS
// does. The caller sets it as the http.Server's TLSConfig and serves on
// tls.NewListener(ln, cfg).
func userMetricsTLS(logger *zap.SugaredLogger) (cfg *tls.Config, stop func(), err error) {
	noop := func() {}
	var env userMetricsTLSEnv
	if err := envconfig.Process("", &env); err != nil {
		return nil, noop, err
	}
	cfg, err = env.config()
	if err != nil || cfg == nil {
		return nil, noop, err
	}
	watcher, err := certificate.NewWatcher(env.Cert, env.Key, logger)
	if err != nil {
		return nil, noop, env.certError(err)
	}
	cfg.GetCertificate = watcher.GetCertificate
	logger.Infow("Request metrics served over HTTPS",
		zap.String("cert", env.Cert), zap.String("key", env.Key),
		zap.String("clientAuth", userMetricsClientAuthName(cfg.ClientAuth)),
		zap.String("minVersion", tls.VersionName(cfg.MinVersion)))
	return cfg, watcher.Stop, nil
}

// config checks the variables and builds everything but the certificate;
// nil when HTTPS is off.
func (e userMetricsTLSEnv) config() (*tls.Config, error) {
	if (e.Cert == "") != (e.Key == "") {
		set, unset := envUserMetricsTLSCert, envUserMetricsTLSKey
		if e.Cert == "" {
			set, unset = unset, set
		}
		return nil, errors.New(unset + " is empty while " + set + " is set: set both (HTTPS) or neither (HTTP)")
	}
	auth, err := parseUserMetricsClientAuth(e.ClientAuth)
	if err != nil {
		return nil, err
	}
	caFile := strings.TrimSpace(e.ClientCAFile)
	if e.Cert == "" {
		if auth != tls.NoClientCert {
			return nil, errors.New(envUserMetricsTLSClientAuth + ": " + strconv.Quote(e.ClientAuth) +
				" needs HTTPS: set " + envUserMetricsTLSCert + " and " + envUserMetricsTLSKey)
		}
		if caFile != "" {
			return nil, errors.New(envUserMetricsTLSClientCAFile + " is set but HTTPS is off: set " +
				envUserMetricsTLSCert + " and " + envUserMetricsTLSKey)
		}
		return nil, nil
	}
	switch {
	case auth != tls.NoClientCert && caFile == "":
		return nil, errors.New(envUserMetricsTLSClientCAFile + " is empty: " + envUserMetricsTLSClientAuth + "=" +
			strconv.Quote(e.ClientAuth) + " needs the CAs to verify client certificates with")
	case auth == tls.NoClientCert && caFile != "":
		return nil, errors.New(envUserMetricsTLSClientCAFile + " is set but " + envUserMetricsTLSClientAuth + " is " +
			strconv.Quote(e.ClientAuth) + ": set it to optional or require to verify client certificates")
	}

	cfg, err := tlsconfig.Policy{
		MinVersion:       e.MinVersion,
		MaxVersion:       e.MaxVersion,
		CipherSuites:     e.CipherSuites,
		CurvePreferences: e.CurvePreferences,
	}.Config(userMetricsTLSPrefix)
	if err != nil {
		return nil, err
	}
	if !tlsconfig.HTTP2CipherOK(cfg) {
		return nil, errors.New(userMetricsTLSPrefix + "TLS_CIPHER_SUITES: " + strconv.Quote(e.CipherSuites) + ": " + tlsconfig.ErrHTTP2Cipher.Error())
	}
	cfg.NextProtos = []string{"h2", "http/1.1"}
	if auth != tls.NoClientCert {
		pool, err := loadUserMetricsClientCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientAuth, cfg.ClientCAs = auth, pool
	}
	return cfg, nil
}

// parseUserMetricsClientAuth maps none, optional and require (any case,
// spaces trimmed; empty is none) to crypto/tls's modes.
func parseUserMetricsClientAuth(s string) (tls.ClientAuthType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", userMetricsClientAuthNone:
		return tls.NoClientCert, nil
	case userMetricsClientAuthOptional:
		return tls.VerifyClientCertIfGiven, nil
	case userMetricsClientAuthRequire:
		return tls.RequireAndVerifyClientCert, nil
	}
	return tls.NoClientCert, errors.New(envUserMetricsTLSClientAuth + ": " + strconv.Quote(s) +
		" is not a client authentication mode (use none, optional or require)")
}

// userMetricsClientAuthName is the variable's value for a mode parseUserMetricsClientAuth returns.
func userMetricsClientAuthName(a tls.ClientAuthType) string {
	switch a {
	case tls.VerifyClientCertIfGiven:
		return userMetricsClientAuthOptional
	case tls.RequireAndVerifyClientCert:
		return userMetricsClientAuthRequire
	}
	return userMetricsClientAuthNone
}

// loadUserMetricsClientCAs reads the client CA bundle; a file without a
// PEM certificate is an error.
func loadUserMetricsClientCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, errors.New(envUserMetricsTLSClientCAFile + ": " + err.Error())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New(envUserMetricsTLSClientCAFile + ": " + strconv.Quote(file) + " holds no PEM certificate")
	}
	return pool, nil
}

// certError names the variable behind a certificate.Watcher load error: the
// file that could not be read, or both when the pair does not parse or match.
func (e userMetricsTLSEnv) certError(err error) error {
	names := envUserMetricsTLSCert + ", " + envUserMetricsTLSKey
	var pe *fs.PathError
	if errors.As(err, &pe) && e.Cert != e.Key {
		switch pe.Path {
		case e.Cert:
			names = envUserMetricsTLSCert
		case e.Key:
			names = envUserMetricsTLSKey
		}
	}
	return errors.New(names + ": " + err.Error())
}
