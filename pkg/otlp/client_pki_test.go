package otlp

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/queue/certificate/certtest"
)

// testPKI is a certtest CA with a server certificate (serial 2) for
// 127.0.0.1 and localhost and a client certificate (serial 3), on disk as
// the OTEL_EXPORTER_OTLP_*CERTIFICATE variables expect them.
type testPKI struct {
	caFile, clientCertFile, clientKeyFile string
	roots                                 *x509.CertPool
	server                                tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca := certtest.NewCA(t)
	client := certtest.NewDir(t, ca.IssueClient(t, 3))
	return &testPKI{
		caFile:         ca.WriteCertFile(t),
		clientCertFile: client.CertFile(),
		clientKeyFile:  client.KeyFile(),
		roots:          ca.Pool,
		server:         ca.Issue(t, 2).TLSCertificate(t),
	}
}

// serverTLS is a server configuration presenting the server certificate;
// with mTLS it requires a client certificate from the CA.
func (p *testPKI) serverTLS(mTLS bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mTLS {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = p.roots
	}
	return c
}

// writeFile writes b to name in dir and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
