package sharedmain

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/queue-proxy/queue-proxy/pkg/queue/certificate/certtest"
	"github.com/queue-proxy/queue-proxy/pkg/tlsconfig"
)

// userMetricsTLSVars are the variables userMetricsTLS reads.
var userMetricsTLSVars = []string{
	"METRICS_PROMETHEUS_TLS_CERT",
	"METRICS_PROMETHEUS_TLS_KEY",
	"METRICS_PROMETHEUS_TLS_CLIENT_AUTH",
	"METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE",
	"METRICS_PROMETHEUS_TLS_MIN_VERSION",
	"METRICS_PROMETHEUS_TLS_MAX_VERSION",
	"METRICS_PROMETHEUS_TLS_CIPHER_SUITES",
	"METRICS_PROMETHEUS_TLS_CURVE_PREFERENCES",
}

// setUserMetricsTLSEnv sets the variables in env (empty values included)
// and unsets the others, for the test's duration.
func setUserMetricsTLSEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k := range env {
		if !slices.Contains(userMetricsTLSVars, k) {
			t.Fatalf("test sets %s, which is not a user-metrics TLS variable", k)
		}
	}
	for _, k := range userMetricsTLSVars {
		t.Setenv(k, "") // restores the old value at the end
		if v, ok := env[k]; ok {
			os.Setenv(k, v)
		} else {
			os.Unsetenv(k)
		}
	}
}

// userMetricsTLSNoLeaks fails the test if a goroutine it started (the
// certificate watcher, servers, clients) outlives it and its cleanups.
func userMetricsTLSNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// writeTestFile writes b to name in dir and returns the path.
func writeTestFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUserMetricsTLSEnvSpec(t *testing.T) {
	if !slices.ContainsFunc(envSpecs, func(s any) bool { return reflect.TypeOf(s) == reflect.TypeOf(userMetricsTLSEnv{}) }) {
		t.Error("userMetricsTLSEnv is not registered in envSpecs")
	}
	var names []string
	for _, v := range specEnvVars(userMetricsTLSEnv{}) {
		names = append(names, v.Name)
		if strings.TrimSpace(v.Desc) == "" {
			t.Errorf("%s has no desc", v.Name)
		}
		if want := map[string]string{"METRICS_PROMETHEUS_TLS_MIN_VERSION": "1.3"}[v.Name]; v.Default != want {
			t.Errorf("%s default %q, want %q", v.Name, v.Default, want)
		}
	}
	if !slices.Equal(names, userMetricsTLSVars) {
		t.Errorf("userMetricsTLSEnv reads %q, want %q", names, userMetricsTLSVars)
	}
	if tlsconfig.DefaultMinVersion != tls.VersionTLS13 {
		t.Errorf("tlsconfig.DefaultMinVersion %x; the documented default is 1.3", tlsconfig.DefaultMinVersion)
	}
}

// TestUserMetricsTLSConfig: every variable, every rule, every bad value.
// Errors must start with the variable at fault.
func TestUserMetricsTLSConfig(t *testing.T) {
	ca := certtest.NewCA(t)
	dir := certtest.NewDir(t, ca.Issue(t, 1))
	other := certtest.NewDir(t, ca.Issue(t, 2))
	tmp := t.TempDir()
	garbage := writeTestFile(t, tmp, "garbage.pem", []byte("not PEM\n"))
	missing := filepath.Join(tmp, "missing.pem")
	caFile := certtest.NewCA(t).WriteCertFile(t)

	const (
		cert     = "METRICS_PROMETHEUS_TLS_CERT"
		key      = "METRICS_PROMETHEUS_TLS_KEY"
		auth     = "METRICS_PROMETHEUS_TLS_CLIENT_AUTH"
		clientCA = "METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE"
		minV     = "METRICS_PROMETHEUS_TLS_MIN_VERSION"
		maxV     = "METRICS_PROMETHEUS_TLS_MAX_VERSION"
		ciphers  = "METRICS_PROMETHEUS_TLS_CIPHER_SUITES"
		curves   = "METRICS_PROMETHEUS_TLS_CURVE_PREFERENCES"
	)
	// on is HTTPS with the good pair plus extra.
	on := func(extra map[string]string) map[string]string {
		env := map[string]string{cert: dir.CertFile(), key: dir.KeyFile()}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	// want is what a config must carry besides the certificate.
	type want struct {
		minVersion, maxVersion uint16
		clientAuth             tls.ClientAuthType
		clientCAs              bool
		ciphers                []uint16
		curves                 []tls.CurveID
	}
	defaults := &want{minVersion: tls.VersionTLS13}

	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string // regexp; "" for no error
		want    *want  // nil: HTTPS off
	}{
		// HTTPS off.
		{name: "all unset", env: nil},
		{name: "all empty", env: map[string]string{cert: "", key: "", auth: "", clientCA: "", minV: "", maxV: "", ciphers: "", curves: ""}},
		{name: "off: the policy is not read", env: map[string]string{minV: "1.1", maxV: "9", ciphers: "bogus", curves: "bogus"}},
		{name: "off: client auth none", env: map[string]string{auth: "none"}},

		// The pair.
		{name: "cert without key", env: map[string]string{cert: dir.CertFile()},
			wantErr: `^METRICS_PROMETHEUS_TLS_KEY is empty while METRICS_PROMETHEUS_TLS_CERT is set`},
		{name: "key without cert", env: map[string]string{cert: "", key: dir.KeyFile()},
			wantErr: `^METRICS_PROMETHEUS_TLS_CERT is empty while METRICS_PROMETHEUS_TLS_KEY is set`},
		{name: "cert file missing", env: on(map[string]string{cert: missing}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CERT: open .*missing\.pem`},
		{name: "key file missing", env: on(map[string]string{key: missing}),
			wantErr: `^METRICS_PROMETHEUS_TLS_KEY: open .*missing\.pem`},
		{name: "cert not PEM", env: on(map[string]string{cert: garbage}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CERT, METRICS_PROMETHEUS_TLS_KEY: certificate .*garbage\.pem`},
		{name: "key of another certificate", env: on(map[string]string{key: other.KeyFile()}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CERT, METRICS_PROMETHEUS_TLS_KEY: .*private key does not match`},

		// Client authentication.
		{name: "client auth unknown", env: on(map[string]string{auth: "always", clientCA: caFile}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_AUTH: "always" is not a client authentication mode`},
		{name: "client auth unknown, HTTPS off", env: map[string]string{auth: "true"},
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_AUTH: "true" is not a client authentication mode`},
		{name: "client auth require, HTTPS off", env: map[string]string{auth: "require", clientCA: caFile},
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_AUTH: "require" needs HTTPS`},
		{name: "client auth optional, HTTPS off", env: map[string]string{auth: "optional"},
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_AUTH: "optional" needs HTTPS`},
		{name: "client CA, HTTPS off", env: map[string]string{clientCA: caFile},
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE is set but HTTPS is off`},
		{name: "require without client CA", env: on(map[string]string{auth: "require"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE is empty: METRICS_PROMETHEUS_TLS_CLIENT_AUTH="require" needs`},
		{name: "optional without client CA", env: on(map[string]string{auth: "optional", clientCA: "  "}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE is empty: METRICS_PROMETHEUS_TLS_CLIENT_AUTH="optional" needs`},
		{name: "client CA with none", env: on(map[string]string{auth: "none", clientCA: caFile}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE is set but METRICS_PROMETHEUS_TLS_CLIENT_AUTH is "none"`},
		{name: "client CA with client auth unset", env: on(map[string]string{clientCA: caFile}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE is set but METRICS_PROMETHEUS_TLS_CLIENT_AUTH is ""`},
		{name: "client CA file missing", env: on(map[string]string{auth: "require", clientCA: missing}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE: open .*missing\.pem`},
		{name: "client CA file without a certificate", env: on(map[string]string{auth: "optional", clientCA: garbage}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE: ".*garbage\.pem" holds no PEM certificate`},

		// The policy, read through pkg/tlsconfig.
		{name: "min version 1.1", env: on(map[string]string{minV: "1.1"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_MIN_VERSION: "1.1"`},
		{name: "max version TLS1.3", env: on(map[string]string{maxV: "TLS1.3"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_MAX_VERSION: "TLS1.3"`},
		{name: "max version below the default min", env: on(map[string]string{maxV: "1.2"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_MAX_VERSION: "1.2" is below the minimum version 1.3`},
		{name: "unknown cipher suite", env: on(map[string]string{ciphers: "TLS_FAST"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CIPHER_SUITES: "TLS_FAST"`},
		{name: "insecure cipher suite", env: on(map[string]string{ciphers: "TLS_RSA_WITH_RC4_128_SHA"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CIPHER_SUITES: .*insecure`},
		{name: "cipher suites without HTTP/2's", env: on(map[string]string{minV: "1.2", ciphers: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CIPHER_SUITES: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": HTTP/2 needs`},
		{name: "unknown curve", env: on(map[string]string{curves: "P-224"}),
			wantErr: `^METRICS_PROMETHEUS_TLS_CURVE_PREFERENCES: "P-224"`},

		// Good configurations.
		{name: "HTTPS, defaults", env: on(nil), want: defaults},
		{name: "HTTPS, min version empty", env: on(map[string]string{minV: "", auth: ""}), want: defaults},
		{name: "HTTPS, client auth NONE", env: on(map[string]string{auth: " NONE "}), want: defaults},
		{name: "HTTPS, policy", env: on(map[string]string{
			minV: "1.2", maxV: "1.2", ciphers: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", curves: "X25519,P-256"}),
			want: &want{
				minVersion: tls.VersionTLS12, maxVersion: tls.VersionTLS12,
				ciphers: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
				curves:  []tls.CurveID{tls.X25519, tls.CurveP256},
			}},
		{name: "HTTPS, optional", env: on(map[string]string{auth: "optional", clientCA: caFile}),
			want: &want{minVersion: tls.VersionTLS13, clientAuth: tls.VerifyClientCertIfGiven, clientCAs: true}},
		{name: "HTTPS, require (case and spaces)", env: on(map[string]string{auth: " Require", clientCA: " " + caFile + " "}),
			want: &want{minVersion: tls.VersionTLS13, clientAuth: tls.RequireAndVerifyClientCert, clientCAs: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			userMetricsTLSNoLeaks(t)
			setUserMetricsTLSEnv(t, tc.env)
			cfg, stop, err := userMetricsTLS(zap.NewNop().Sugar())
			if stop == nil {
				t.Fatal("stop is nil")
			}
			defer stop()
			if tc.wantErr != "" {
				if err == nil || !regexp.MustCompile(tc.wantErr).MatchString(err.Error()) {
					t.Fatalf("error %v, want one matching %s", err, tc.wantErr)
				}
				if cfg != nil {
					t.Error("a config came with the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("userMetricsTLS: %v", err)
			}
			if tc.want == nil {
				if cfg != nil {
					t.Fatalf("config %+v, want nil (HTTPS off)", cfg)
				}
				return
			}
			if cfg == nil {
				t.Fatal("config nil, want HTTPS on")
			}
			got := want{
				minVersion: cfg.MinVersion, maxVersion: cfg.MaxVersion,
				clientAuth: cfg.ClientAuth, clientCAs: cfg.ClientCAs != nil,
				ciphers: cfg.CipherSuites, curves: cfg.CurvePreferences,
			}
			if !reflect.DeepEqual(got, *tc.want) {
				t.Errorf("config %+v, want %+v", got, *tc.want)
			}
			if want := []string{"h2", "http/1.1"}; !slices.Equal(cfg.NextProtos, want) {
				t.Errorf("NextProtos %q, want %q", cfg.NextProtos, want)
			}
			if len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
				t.Fatalf("certificate not served through GetCertificate (Certificates %d)", len(cfg.Certificates))
			}
			c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
			if err != nil || c == nil || c.Leaf == nil || c.Leaf.SerialNumber.Int64() != 1 {
				t.Errorf("GetCertificate = %v, %v; want the certificate with serial 1", c, err)
			}
		})
	}
}

// startUserMetricsTLSServer serves, with cfg, a handler answering
// "<proto> <number of client certificates>", and returns its https URL.
func startUserMetricsTLSServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d", r.Proto, len(r.TLS.PeerCertificates))
	}))
	s.Config.TLSConfig = cfg // as the lead wires it: net/http checks it for HTTP/2
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Listener = tls.NewListener(s.Listener, cfg)
	s.Start()
	t.Cleanup(s.Close)
	return "https://" + s.Listener.Addr().String() + "/metrics"
}

// userMetricsTLSGet GETs url on a new connection and returns the body and
// the serial of the server's certificate.
func userMetricsTLSGet(url string, tc *tls.Config, h2 bool) (body string, serial int64, err error) {
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: h2}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestUserMetricsTLSHandshake: real handshakes against a server using the
// config. The server is verified by the client; client certificates are
// not asked for (none), verified when sent (optional) or needed (require).
func TestUserMetricsTLSHandshake(t *testing.T) {
	userMetricsTLSNoLeaks(t)
	ca := certtest.NewCA(t)
	dir := certtest.NewDir(t, ca.Issue(t, 7))
	trusted, untrusted := certtest.NewCA(t), certtest.NewCA(t)
	caFile := trusted.WriteCertFile(t)
	trustedCert := trusted.IssueClient(t, 2).TLSCertificate(t)
	untrustedCert := untrusted.IssueClient(t, 2).TLSCertificate(t)

	type client struct {
		name   string
		config func() *tls.Config
		h2     bool
		// want is the body, or wantErr a regexp of the error.
		want, wantErr string
	}
	base := func(certs ...tls.Certificate) func() *tls.Config {
		return func() *tls.Config { return &tls.Config{RootCAs: ca.Pool, Certificates: certs} }
	}
	// forced sends cert whatever CAs the server asks for. (Given
	// Certificates, Go's client sends none that does not chain to one of
	// them; Prometheus's client, like this one, sends its certificate.)
	forced := func(cert tls.Certificate) func() *tls.Config {
		return func() *tls.Config {
			return &tls.Config{RootCAs: ca.Pool, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &cert, nil
			}}
		}
	}
	// The server refused the client: the client sees the server's alert.
	const refused = `remote error: tls: `
	for _, mode := range []struct {
		auth    string
		clients []client
	}{
		{auth: "none", clients: []client{
			{name: "no client cert", config: base(), want: "HTTP/1.1 0"},
			{name: "trusted client cert, not asked for", config: forced(trustedCert), want: "HTTP/1.1 0"},
			{name: "untrusted client cert, not asked for", config: forced(untrustedCert), want: "HTTP/1.1 0"},
			{name: "h2 by ALPN", config: base(), h2: true, want: "HTTP/2.0 0"},
			{name: "client does not trust the server's CA", config: func() *tls.Config { return &tls.Config{RootCAs: x509.NewCertPool()} },
				wantErr: `certificate signed by unknown authority`},
			{name: "client for another host name", config: func() *tls.Config { return &tls.Config{RootCAs: ca.Pool, ServerName: "metrics.example"} },
				wantErr: `certificate is valid for .*, not metrics\.example`},
			{name: "TLS 1.2 client, minimum 1.3", config: func() *tls.Config { return &tls.Config{RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12} },
				wantErr: refused + `protocol version not supported`},
		}},
		{auth: "optional", clients: []client{
			{name: "no client cert", config: base(), want: "HTTP/1.1 0"},
			{name: "trusted client cert", config: base(trustedCert), want: "HTTP/1.1 1"},
			{name: "untrusted client cert", config: forced(untrustedCert), wantErr: refused + `unknown certificate authority`},
		}},
		{auth: "require", clients: []client{
			{name: "no client cert", config: base(), wantErr: refused + `certificate required`},
			{name: "trusted client cert", config: base(trustedCert), want: "HTTP/1.1 1"},
			{name: "trusted client cert, h2", config: base(trustedCert), h2: true, want: "HTTP/2.0 1"},
			{name: "untrusted client cert", config: forced(untrustedCert), wantErr: refused + `unknown certificate authority`},
		}},
	} {
		t.Run(mode.auth, func(t *testing.T) {
			env := map[string]string{
				"METRICS_PROMETHEUS_TLS_CERT":        dir.CertFile(),
				"METRICS_PROMETHEUS_TLS_KEY":         dir.KeyFile(),
				"METRICS_PROMETHEUS_TLS_CLIENT_AUTH": mode.auth,
			}
			if mode.auth != "none" {
				env["METRICS_PROMETHEUS_TLS_CLIENT_CA_FILE"] = caFile
			}
			setUserMetricsTLSEnv(t, env)
			cfg, stop, err := userMetricsTLS(zap.NewNop().Sugar())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
			url := startUserMetricsTLSServer(t, cfg)
			for _, c := range mode.clients {
				t.Run(c.name, func(t *testing.T) {
					body, serial, err := userMetricsTLSGet(url, c.config(), c.h2)
					if c.wantErr != "" {
						if err == nil || !regexp.MustCompile(c.wantErr).MatchString(err.Error()) {
							t.Errorf("GET = %q, %v; want an error matching %s", body, err, c.wantErr)
						}
						return
					}
					if err != nil {
						t.Fatalf("GET: %v", err)
					}
					if body != c.want || serial != 7 {
						t.Errorf("GET = %q from certificate %d, want %q from certificate 7", body, serial, c.want)
					}
				})
			}
		})
	}
}

// TestUserMetricsTLSReload: a rotated certificate is served without a
// restart, and stop ends the watcher (goleak).
func TestUserMetricsTLSReload(t *testing.T) {
	userMetricsTLSNoLeaks(t)
	ca := certtest.NewCA(t)
	dir := certtest.NewProjectedDir(t, ca.Issue(t, 1))
	setUserMetricsTLSEnv(t, map[string]string{
		"METRICS_PROMETHEUS_TLS_CERT": dir.CertFile(),
		"METRICS_PROMETHEUS_TLS_KEY":  dir.KeyFile(),
	})
	cfg, stop, err := userMetricsTLS(zap.NewNop().Sugar())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	url := startUserMetricsTLSServer(t, cfg)
	client := &tls.Config{RootCAs: ca.Pool}
	if _, serial, err := userMetricsTLSGet(url, client, false); err != nil || serial != 1 {
		t.Fatalf("before the rotation: certificate %d, %v; want 1", serial, err)
	}

	dir.Write(t, ca.Issue(t, 2))
	// The watcher reloads asynchronously (a file event, then a short
	// settle); poll with new handshakes until it has, within a bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, serial, err := userMetricsTLSGet(url, client, false)
		if err != nil {
			t.Fatalf("during the rotation: %v", err)
		}
		if serial == 2 {
			break
		}
		if serial != 1 {
			t.Fatalf("certificate %d, want 1 or 2", serial)
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate is not served after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUserMetricsTLSErrorsNameOneVariable guards certError: with the cert
// and the key in one file (a combined PEM), a read error names both.
func TestUserMetricsTLSErrorsNameOneVariable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "both.pem")
	for _, tc := range []struct {
		name      string
		env       userMetricsTLSEnv
		err       error
		wantNames string
	}{
		{"cert", userMetricsTLSEnv{Cert: "c", Key: "k"}, &os.PathError{Op: "open", Path: "c", Err: os.ErrNotExist}, "METRICS_PROMETHEUS_TLS_CERT: "},
		{"key", userMetricsTLSEnv{Cert: "c", Key: "k"}, &os.PathError{Op: "open", Path: "k", Err: os.ErrNotExist}, "METRICS_PROMETHEUS_TLS_KEY: "},
		{"same file", userMetricsTLSEnv{Cert: missing, Key: missing}, &os.PathError{Op: "open", Path: missing, Err: os.ErrNotExist}, "METRICS_PROMETHEUS_TLS_CERT, METRICS_PROMETHEUS_TLS_KEY: "},
		{"parse", userMetricsTLSEnv{Cert: "c", Key: "k"}, errors.New("certificate c and key k: bad"), "METRICS_PROMETHEUS_TLS_CERT, METRICS_PROMETHEUS_TLS_KEY: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.env.certError(tc.err).Error()
			if want := tc.wantNames + tc.err.Error(); got != want {
				t.Errorf("certError = %q, want %q", got, want)
			}
		})
	}
}
