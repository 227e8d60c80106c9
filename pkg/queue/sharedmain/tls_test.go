package sharedmain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	clocktest "k8s.io/utils/clock/testing"

	"github.com/queue-proxy/queue-proxy/pkg/queue"
	"github.com/queue-proxy/queue-proxy/pkg/queue/certificate/certtest"
	"github.com/queue-proxy/queue-proxy/pkg/tlsconfig"
)

// tlsVars are the TLS policy variables; setTLSEnv sets them all.
var tlsVars = []string{"QUEUE_PROXY_TLS_MIN_VERSION", "QUEUE_PROXY_TLS_MAX_VERSION", "QUEUE_PROXY_TLS_CIPHER_SUITES", "QUEUE_PROXY_TLS_CURVE_PREFERENCES"}

// setTLSEnv points QP_CERT_DIR at dir and sets the TLS policy variables to
// env's values, empty when absent, as the reconciler does.
func setTLSEnv(t *testing.T, dir string, env map[string]string) {
	t.Helper()
	t.Setenv("QP_CERT_DIR", dir)
	for _, k := range tlsVars {
		t.Setenv(k, env[k])
	}
}

// verifyNoLeaks checks, when the test and its cleanups are over, that no
// goroutine it started (certificate watcher, servers, clients) is left.
// Call it first, so that its cleanup runs last.
func verifyNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// tlsTestServer is newTLSServer serving a handler that answers "ok <proto>".
func tlsTestServer(t *testing.T) (addr string, logs *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s, stop, err := newTLSServer(&config{QueueServingTLSPort: "0"}, zap.New(core).Sugar(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.Proto)
	}))
	if err != nil {
		t.Fatalf("newTLSServer: %v", err)
	}
	if s == nil {
		t.Fatal("newTLSServer returned no server with certificates present")
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.srv.Serve(s.ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-served
		stop()
	})
	return s.ln.Addr().String(), logs
}

func TestTLSEnvSpec(t *testing.T) {
	found := false
	for _, s := range envSpecs {
		found = found || reflect.TypeOf(s) == reflect.TypeOf(tlsEnv{})
	}
	if !found {
		t.Error("tlsEnv is not registered in envSpecs")
	}
	typ := reflect.TypeOf(tlsEnv{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Tag.Get("envconfig") == "" || f.Tag.Get("desc") == "" {
			t.Errorf("field %s lacks an envconfig or desc tag", f.Name)
		}
	}
	if f, _ := typ.FieldByName("CertDir"); f.Tag.Get("default") != queue.CertDirectory {
		t.Errorf("QP_CERT_DIR default %q, want queue.CertDirectory %q", f.Tag.Get("default"), queue.CertDirectory)
	}
	if f, _ := typ.FieldByName("MinVersion"); f.Tag.Get("default") != "1.3" || tlsconfig.DefaultMinVersion != tls.VersionTLS13 {
		t.Errorf("QUEUE_PROXY_TLS_MIN_VERSION default %q, tlsconfig default %x; want 1.3 both", f.Tag.Get("default"), tlsconfig.DefaultMinVersion)
	}
}

// TestTLSOff: without both files, there is no TLS server, and the policy
// variables are not even read (an invalid one is no error).
func TestTLSOff(t *testing.T) {
	ca := certtest.NewCA(t)
	p := ca.Issue(t, 1)
	cases := []struct {
		name  string
		files map[string][]byte
		warn  bool
	}{
		{"empty directory", nil, false},
		{"only tls.crt", map[string][]byte{certtest.CertName: p.CertPEM}, true},
		{"only tls.key", map[string][]byte{certtest.KeyName: p.KeyPEM}, true},
		{"dangling symlinks", map[string][]byte{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.files != nil && len(c.files) == 0 {
				for _, name := range []string{certtest.CertName, certtest.KeyName} {
					if err := os.Symlink("..data/"+name, filepath.Join(dir, name)); err != nil {
						t.Fatal(err)
					}
				}
			}
			setTLSEnv(t, dir, map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.1", "QUEUE_PROXY_TLS_CIPHER_SUITES": "NOPE"})
			core, logs := observer.New(zapcore.DebugLevel)
			s, stop, err := newTLSServer(&config{QueueServingTLSPort: "0"}, zap.New(core).Sugar(), http.NotFoundHandler())
			if s != nil || err != nil || stop == nil {
				t.Fatalf("newTLSServer = %v, stop %v, %v; want nil, a func, nil", s, stop != nil, err)
			}
			stop()
			if got := logs.FilterMessageSnippet("TLS is off").Len() == 1; got != c.warn {
				t.Errorf("warning logged: %v, want %v (%v)", got, c.warn, logs.All())
			}
		})
	}
	t.Run("default directory", func(t *testing.T) {
		if _, err := os.Stat(queue.CertDirectory); err == nil {
			t.Skipf("%s exists on this machine", queue.CertDirectory)
		}
		setTLSEnv(t, "", nil) // empty means the default
		s, _, err := newTLSServer(&config{QueueServingTLSPort: "0"}, zap.NewNop().Sugar(), http.NotFoundHandler())
		if s != nil || err != nil {
			t.Fatalf("newTLSServer = %v, %v; want nil, nil", s, err)
		}
	})
}

func TestTLSStartupErrors(t *testing.T) {
	ca := certtest.NewCA(t)
	p1, p2 := ca.Issue(t, 1), ca.Issue(t, 2)
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.Addr().String())

	cases := []struct {
		name string
		dir  func(t *testing.T) string
		env  map[string]string
		port string
		want []string
	}{
		{"cert dir is a file (ENOTDIR)", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			os.WriteFile(f, nil, 0o600)
			return f
		}, nil, "0", []string{"checking for the TLS certificate", "not a directory"}},
		{"symlink loop (ELOOP)", func(t *testing.T) string {
			dir := t.TempDir()
			os.Symlink(certtest.CertName, filepath.Join(dir, certtest.CertName))
			return dir
		}, nil, "0", []string{"checking for the TLS certificate", "too many levels of symbolic links"}},
		{"min version 1.1", nil, map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.1"}, "0",
			[]string{`failed to read TLS configuration from environment: QUEUE_PROXY_TLS_MIN_VERSION: "1.1"`}},
		{"max version 1.4", nil, map[string]string{"QUEUE_PROXY_TLS_MAX_VERSION": "1.4"}, "0",
			[]string{`QUEUE_PROXY_TLS_MAX_VERSION: "1.4"`}},
		{"max below the default min", nil, map[string]string{"QUEUE_PROXY_TLS_MAX_VERSION": "1.2"}, "0",
			[]string{`QUEUE_PROXY_TLS_MAX_VERSION: "1.2" is below the minimum version 1.3`}},
		{"unknown cipher", nil, map[string]string{"QUEUE_PROXY_TLS_CIPHER_SUITES": "TLS_AES_128_GCM_SHA256,NOPE"}, "0",
			[]string{`QUEUE_PROXY_TLS_CIPHER_SUITES: "TLS_AES_128_GCM_SHA256,NOPE": unknown cipher suite "NOPE"`}},
		{"insecure cipher", nil, map[string]string{"QUEUE_PROXY_TLS_CIPHER_SUITES": "TLS_ECDHE_RSA_WITH_RC4_128_SHA"}, "0",
			[]string{`QUEUE_PROXY_TLS_CIPHER_SUITES: "TLS_ECDHE_RSA_WITH_RC4_128_SHA": cipher suite "TLS_ECDHE_RSA_WITH_RC4_128_SHA" is insecure`}},
		{"TLS 1.2 ciphers without HTTP/2's mandatory suite", nil, map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.2", "QUEUE_PROXY_TLS_CIPHER_SUITES": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}, "0",
			[]string{`QUEUE_PROXY_TLS_CIPHER_SUITES: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": HTTP/2 needs TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 in the cipher list when TLS 1.2 is allowed`}},
		{"unknown curve", nil, map[string]string{"QUEUE_PROXY_TLS_CURVE_PREFERENCES": "X25519, X448"}, "0",
			[]string{`QUEUE_PROXY_TLS_CURVE_PREFERENCES: "X25519, X448": unknown curve "X448"`}},
		{"key of another certificate", func(t *testing.T) string {
			d := certtest.NewDir(t, p1)
			d.WriteFile(t, certtest.KeyName, p2.KeyPEM)
			return d.Path
		}, nil, "0", []string{"failed to create certWatcher", "private key does not match public key"}},
		{"port in use", nil, nil, busyPort, []string{"server main tls", "address already in use"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			verifyNoLeaks(t) // a failed start stops its watcher
			dir := certtest.NewProjectedDir(t, p1).Path
			if c.dir != nil {
				dir = c.dir(t)
			}
			setTLSEnv(t, dir, c.env)
			s, stop, err := newTLSServer(&config{QueueServingTLSPort: c.port}, zap.NewNop().Sugar(), http.NotFoundHandler())
			if err == nil {
				if s != nil {
					s.ln.Close()
				}
				stop()
				t.Fatalf("newTLSServer = %v, want an error", s)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestTLSPolicy: each QUEUE_PROXY_TLS_* variable decides which clients
// complete a handshake, and ALPN picks h2 or HTTP/1.1.
func TestTLSPolicy(t *testing.T) {
	ca := certtest.NewCA(t)
	pair := ca.Issue(t, 1)
	client := func(f func(c *tls.Config)) *tls.Config {
		c := &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}
		if f != nil {
			f(c)
		}
		return c
	}
	tls12 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }
	type check struct {
		name    string
		client  *tls.Config
		ok      bool
		version uint16 // if ok and non-zero
		suite   uint16 // if ok and non-zero
		curve   tls.CurveID
		alpn    string // if ok
	}
	cases := []struct {
		name   string
		env    map[string]string
		checks []check
	}{
		{"defaults", nil, []check{
			{name: "TLS 1.3 client", client: client(nil), ok: true, version: tls.VersionTLS13},
			{name: "TLS 1.2 client refused", client: client(tls12)},
		}},
		{"min 1.2", map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.2"}, []check{
			{name: "TLS 1.2 client accepted", client: client(tls12), ok: true, version: tls.VersionTLS12},
			{name: "TLS 1.3 client", client: client(nil), ok: true, version: tls.VersionTLS13},
		}},
		{"min 1.3 explicit", map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.3"}, []check{
			{name: "TLS 1.2 client refused", client: client(tls12)},
		}},
		{"max 1.2", map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.2", "QUEUE_PROXY_TLS_MAX_VERSION": "1.2"}, []check{
			{name: "TLS 1.3-only client refused", client: client(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 })},
			{name: "any client gets 1.2", client: client(nil), ok: true, version: tls.VersionTLS12},
		}},
		{"max 1.3", map[string]string{"QUEUE_PROXY_TLS_MAX_VERSION": "1.3"}, []check{
			{name: "TLS 1.3 client", client: client(nil), ok: true, version: tls.VersionTLS13},
		}},
		{"cipher suites", map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.2",
			"QUEUE_PROXY_TLS_CIPHER_SUITES": " TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, []check{
			{name: "listed suite", client: client(func(c *tls.Config) {
				tls12(c)
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
			}), ok: true, version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			{name: "unlisted suite refused", client: client(func(c *tls.Config) {
				tls12(c)
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
			})},
		}},
		{"curve preferences", map[string]string{"QUEUE_PROXY_TLS_CURVE_PREFERENCES": "P-384"}, []check{
			{name: "client with P-384", client: client(func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP384} }),
				ok: true, curve: tls.CurveP384},
			{name: "client with X25519 only refused", client: client(func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519} })},
		}},
		{"curve preferences, Go names", map[string]string{"QUEUE_PROXY_TLS_CURVE_PREFERENCES": "X25519MLKEM768,CurveP521"}, []check{
			{name: "client with P-521", client: client(func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP521} }),
				ok: true, curve: tls.CurveP521},
			{name: "client with P-256 only refused", client: client(func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP256} })},
		}},
		{"ALPN", nil, []check{
			{name: "h2 offered", client: client(func(c *tls.Config) { c.NextProtos = []string{"h2", "http/1.1"} }), ok: true, alpn: "h2"},
			{name: "http/1.1 offered", client: client(func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }), ok: true, alpn: "http/1.1"},
			{name: "no ALPN", client: client(nil), ok: true, alpn: ""},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setTLSEnv(t, certtest.NewProjectedDir(t, pair).Path, c.env)
			addr, _ := tlsTestServer(t)
			for _, ch := range c.checks {
				conn, err := tls.Dial("tcp", addr, ch.client)
				if !ch.ok {
					if err == nil {
						conn.Close()
						t.Errorf("%s: handshake succeeded, want it refused", ch.name)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: handshake: %v", ch.name, err)
					continue
				}
				st := conn.ConnectionState()
				conn.Close()
				if ch.version != 0 && st.Version != ch.version {
					t.Errorf("%s: version %s, want %s", ch.name, tls.VersionName(st.Version), tls.VersionName(ch.version))
				}
				if ch.suite != 0 && st.CipherSuite != ch.suite {
					t.Errorf("%s: suite %s, want %s", ch.name, tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(ch.suite))
				}
				if ch.curve != 0 && st.CurveID != ch.curve {
					t.Errorf("%s: curve %v, want %v", ch.name, st.CurveID, ch.curve)
				}
				if st.NegotiatedProtocol != ch.alpn {
					t.Errorf("%s: ALPN %q, want %q", ch.name, st.NegotiatedProtocol, ch.alpn)
				}
			}
		})
	}
}

// tlsClient trusts pool and speaks h2 (ALPN) or only HTTP/1.1; each request
// on a client without keep-alives is a new handshake.
func tlsClient(pool *x509.CertPool, h2, keepAlive bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: pool},
		DisableCompression: true,
		DisableKeepAlives:  !keepAlive,
		ForceAttemptHTTP2:  h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// tlsURL is q.url for the TLS server.
func (q *qp) tlsURL(path string) string {
	_, port, _ := net.SplitHostPort(q.addrs[serverMainTLS])
	return "https://127.0.0.1:" + port + path
}

// startTLSQP is startQP with the certificate directory dir and a log file
// the test can read.
func startTLSQP(t *testing.T, app *httptest.Server, dir string, env map[string]string) (*qp, func() string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "tls.log")
	e := map[string]string{
		"QUEUE_SERVING_TLS_PORT": "0",
		"SERVING_LOGGING_CONFIG": `{"level":"debug","encoding":"json","outputPaths":["` + logPath + `"],"encoderConfig":{"messageKey":"message"}}`,
	}
	for k, v := range env {
		e[k] = v
	}
	t.Setenv("QP_CERT_DIR", dir)
	q := startQP(t, app, e)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("queue-proxy log:\n%s", b)
		}
	})
	return q, func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
}

func TestRunTLS(t *testing.T) {
	verifyNoLeaks(t)
	ca := certtest.NewCA(t)
	dir := certtest.NewProjectedDir(t, ca.Issue(t, 1))
	q, log := startTLSQP(t, echoApp(t, true), dir.Path, nil)
	if q.addrs[serverMainTLS] == "" {
		t.Fatalf("no %q server: %v", serverMainTLS, q.addrs)
	}

	h1, h2 := tlsClient(ca.Pool, false, true), tlsClient(ca.Pool, true, true)
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	activator := map[string]string{"User-Agent": "Knative-Activator-Probe", "K-Network-Probe": "queue"}
	for _, c := range []struct {
		name   string
		client *http.Client
		proto  string
	}{{"HTTP/1.1", h1, "HTTP/1.1"}, {"h2 via ALPN", h2, "HTTP/2.0"}} {
		t.Run(c.name, func(t *testing.T) {
			// The activator's probe is answered by the same chain.
			req, _ := http.NewRequest(http.MethodGet, q.tlsURL("/healthz"), nil)
			for k, v := range activator {
				req.Header.Set(k, v)
			}
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "queue" || resp.Proto != c.proto {
				t.Errorf("activator probe: %s %d %q, want %s 200 queue", resp.Proto, resp.StatusCode, b, c.proto)
			}

			// A proxied request, with the Host and header rules of the plain port.
			req, _ = http.NewRequest(http.MethodGet, q.tlsURL("/path"), nil)
			req.Host = "hello.default.example.com"
			req.Header.Set("User-Agent", "")
			r := do(t, c.client, req)
			if r.code != 200 || !strings.Contains(r.body, "host=hello.default.example.com\n") || !strings.Contains(r.body, "proto="+c.proto+"\n") {
				t.Errorf("proxied request: %d %q", r.code, r.body)
			}
		})
	}

	// TLS 1.2 is refused by default, and the server's handshake error is
	// in the structured log, not on stderr.
	if conn, err := tls.Dial("tcp", q.addrs[serverMainTLS], &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}); err == nil {
		conn.Close()
		t.Error("TLS 1.2 handshake succeeded with the default policy")
	}
	handshakeLogged := regexp.MustCompile(`"severity":"WARN".*"message":"http: TLS handshake error from [^"]+: tls: [^"]*".*"server":"main tls"`)
	for deadline := time.Now().Add(5 * time.Second); !handshakeLogged.MatchString(log()); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no structured log line for the refused TLS 1.2 handshake")
		}
	}

	// Plain HTTP keeps running.
	if r := get(t, q.url(serverMain, "/healthz"), activator); r.code != 200 || r.body != "queue" {
		t.Errorf("plain main: %d %q", r.code, r.body)
	}
	// The admin server stays plain HTTP, and does not speak TLS.
	if r := get(t, q.url(serverAdmin, "/other"), nil); r.code != 404 {
		t.Errorf("plain admin: %d %q, want 404", r.code, r.body)
	}
	if conn, err := tls.Dial("tcp", q.addrs[serverAdmin], &tls.Config{InsecureSkipVerify: true}); err == nil {
		conn.Close()
		t.Error("TLS handshake with the admin server succeeded")
	}
	if !strings.Contains(log(), `"message":"Starting http server main tls `) {
		t.Error("no Starting http server main tls log")
	}
	bareClient.CloseIdleConnections()
}

// TestRunTLSOffIgnoresPolicy: with no certificate there is no TLS server and
// an invalid policy is not an error (Knative reads it only with TLS on).
func TestRunTLSOffIgnoresPolicy(t *testing.T) {
	q, _ := startTLSQP(t, echoApp(t), t.TempDir(), map[string]string{"QUEUE_PROXY_TLS_MIN_VERSION": "1.0"})
	if addr, ok := q.addrs[serverMainTLS]; ok {
		t.Errorf("TLS server on %s without a certificate", addr)
	}
}

func TestRunTLSBadPolicy(t *testing.T) {
	ca := certtest.NewCA(t)
	env := baseEnv()
	env["QUEUE_SERVING_PORT"], env["QP_ADMIN_PORT"], env["QP_METRICS_PORT"], env["QUEUE_SERVING_TLS_PORT"] = "0", "0", "0", "0"
	env["QUEUE_PROXY_TLS_MIN_VERSION"] = "1.1"
	setEnv(t, env)
	t.Setenv("QP_CERT_DIR", certtest.NewProjectedDir(t, ca.Issue(t, 1)).Path)
	err := run(context.Background(), runtimeDeps{clock: clocktest.NewFakeClock(time.Now())})
	if err == nil || !strings.Contains(err.Error(), `QUEUE_PROXY_TLS_MIN_VERSION: "1.1"`) {
		t.Fatalf("run = %v, want an error naming QUEUE_PROXY_TLS_MIN_VERSION", err)
	}
}

// TestRunTLSRotation: while a client keeps opening connections, the
// certificate files are replaced twice; every request succeeds, and once a
// handshake has seen the new certificate no later one sees an older one.
func TestRunTLSRotation(t *testing.T) {
	ca := certtest.NewCA(t)
	for name, newDir := range map[string]func(testing.TB, certtest.Pair) *certtest.Dir{
		"projected volume ..data swap": certtest.NewProjectedDir,
		"plain files replaced":         certtest.NewDir,
	} {
		t.Run(name, func(t *testing.T) {
			verifyNoLeaks(t)
			dir := newDir(t, ca.Issue(t, 1))
			q, log := startTLSQP(t, echoApp(t), dir.Path, nil)
			client := tlsClient(ca.Pool, false, false) // a new handshake per request

			var latest atomic.Int64 // serial seen by the last handshake
			var requests, failures atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var stopOnce sync.Once
			stopClient := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
			wg.Go(func() {
				last := int64(0)
				for {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := client.Get(q.tlsURL("/"))
					requests.Add(1)
					if err != nil {
						failures.Add(1)
						t.Errorf("request %d: %v", requests.Load(), err)
						continue
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), "proto=HTTP/1.1") {
						failures.Add(1)
						t.Errorf("request %d: %d %q %v", requests.Load(), resp.StatusCode, b, err)
					}
					serial := resp.TLS.PeerCertificates[0].SerialNumber.Int64()
					if serial < last {
						t.Errorf("request %d: certificate %d after %d", requests.Load(), serial, last)
					}
					last = serial
					latest.Store(serial)
				}
			})
			defer stopClient()

			waitFor := func(serial int64) (time.Duration, int64) {
				t.Helper()
				begin := time.Now()
				for latest.Load() != serial {
					if time.Since(begin) > 10*time.Second {
						t.Fatalf("clients still see certificate %d, want %d", latest.Load(), serial)
					}
					time.Sleep(time.Millisecond)
				}
				took, seen := time.Since(begin), requests.Load()
				// Some more handshakes with this certificate before moving on.
				for n := requests.Load() + 5; requests.Load() < n; {
					if time.Since(begin) > 10*time.Second {
						t.Fatalf("the client is stuck at %d requests", requests.Load())
					}
					time.Sleep(time.Millisecond)
				}
				return took, seen
			}
			waitFor(1)
			for serial := int64(2); serial <= 3; serial++ {
				before := requests.Load()
				dir.Write(t, ca.Issue(t, serial))
				took, seen := waitFor(serial)
				t.Logf("certificate %d served %v after the files changed, %d requests in between", serial, took, seen-before)
			}
			stopClient()
			client.CloseIdleConnections()
			if n := strings.Count(log(), "Certificate and/or key have changed on disk and were reloaded."); n != 2 {
				t.Errorf("%d reload messages, want 2", n)
			}
			if failures.Load() != 0 {
				t.Errorf("%d of %d requests failed", failures.Load(), requests.Load())
			}
		})
	}
}

// TestRunTLSGracefulShutdown: a request in flight on the TLS server when
// SIGTERM comes completes, and run waits for it.
func TestRunTLSGracefulShutdown(t *testing.T) {
	ca := certtest.NewCA(t)
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "h2"}[h2], func(t *testing.T) {
			verifyNoLeaks(t)
			release := make(chan struct{})
			var releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			defer unblock()
			entered := make(chan struct{}, 1)
			// h2c too: the upstream protocol follows the inbound one.
			app := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					entered <- struct{}{}
					<-release
				}
				io.WriteString(w, "done")
			}), &http2.Server{}))
			defer app.Close()
			q, _ := startTLSQP(t, app, certtest.NewProjectedDir(t, ca.Issue(t, 1)).Path, map[string]string{"QP_DRAIN_QUIET_PERIOD": "30s"})
			base := q.clock.Waiters()
			client := tlsClient(ca.Pool, h2, true)
			defer client.CloseIdleConnections()

			type result struct {
				code  int
				body  string
				proto string
				err   error
			}
			slow := make(chan result, 1)
			go func() {
				resp, err := client.Get(q.tlsURL("/slow"))
				if err != nil {
					slow <- result{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				slow <- result{resp.StatusCode, string(b), resp.Proto, err}
			}()
			select {
			case <-entered:
			case r := <-slow:
				t.Fatalf("request did not reach the app: %+v", r)
			}

			q.cancel()                 // SIGTERM
			q.waitForWaiters(base + 1) // the drain's quiet timer
			q.clock.Step(30 * time.Second)
			select {
			case err := <-q.done:
				t.Fatalf("run returned %v with a TLS request in flight", err)
			case r := <-slow:
				t.Fatalf("in-flight request ended before it was released: %+v", r)
			case <-time.After(50 * time.Millisecond):
			}
			unblock()
			wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
			if r := <-slow; r.err != nil || r.code != 200 || r.body != "done" || r.proto != wantProto {
				t.Errorf("in-flight TLS request: %+v, want %s 200 done", r, wantProto)
			}
			if err := q.stepUntilDone(t); err != nil {
				t.Errorf("run = %v, want nil", err)
			}
			// The TLS server was shut down with the others.
			if conn, err := tls.Dial("tcp", q.addrs[serverMainTLS], &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}); err == nil {
				conn.Close()
				t.Error("the TLS server still accepts connections after run returned")
			}
		})
	}
}
