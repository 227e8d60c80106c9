package certtest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"testing"
)

// verify parses p's certificate and verifies it against roots for usage.
func verify(t *testing.T, p Pair, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	t.Helper()
	b, _ := pem.Decode(p.CertPEM)
	if b == nil {
		t.Fatal("certificate is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.SerialNumber.Int64() != p.Serial {
		t.Errorf("serial %d, Pair.Serial %d", c.SerialNumber, p.Serial)
	}
	_, err = c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// TestIssueUsages: a server certificate verifies for server auth only, a
// client certificate for client auth only, each against its CA's Pool or
// CertPEM (through WriteCertFile) and not against another CA.
func TestIssueUsages(t *testing.T) {
	ca, other := NewCA(t), NewCA(t)
	fromFile := x509.NewCertPool()
	b, err := os.ReadFile(ca.WriteCertFile(t))
	if err != nil || !fromFile.AppendCertsFromPEM(b) {
		t.Fatalf("WriteCertFile: %v, or no certificate in it", err)
	}
	server, client := ca.Issue(t, 5), ca.IssueClient(t, 6)
	for _, tc := range []struct {
		name  string
		pair  Pair
		roots *x509.CertPool
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"server for server auth", server, ca.Pool, x509.ExtKeyUsageServerAuth, true},
		{"server for server auth, CA from file", server, fromFile, x509.ExtKeyUsageServerAuth, true},
		{"server for client auth", server, ca.Pool, x509.ExtKeyUsageClientAuth, false},
		{"client for client auth", client, ca.Pool, x509.ExtKeyUsageClientAuth, true},
		{"client for client auth, CA from file", client, fromFile, x509.ExtKeyUsageClientAuth, true},
		{"client for server auth", client, ca.Pool, x509.ExtKeyUsageServerAuth, false},
		{"client, another CA", client, other.Pool, x509.ExtKeyUsageClientAuth, false},
		{"server, another CA", server, other.Pool, x509.ExtKeyUsageServerAuth, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := verify(t, tc.pair, tc.roots, tc.usage); (err == nil) != tc.ok {
				t.Errorf("Verify = %v, want success %v", err, tc.ok)
			}
		})
	}
}

// TestMutualTLS: a handshake in which each side presents a TLSCertificate
// and verifies the other's against the CA. The server writes once after
// its handshake, so that the client reads the server's verdict (an alert)
// rather than the handshake blocking on the pipe.
func TestMutualTLS(t *testing.T) {
	ca := NewCA(t)
	server, client := ca.Issue(t, 7).TLSCertificate(t), ca.IssueClient(t, 8).TLSCertificate(t)
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	srv := tls.Server(sc, &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool,
	})
	done := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil {
			_, err = srv.Write([]byte("ok"))
		}
		srv.Close()
		done <- err
	}()
	cli := tls.Client(cc, &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: ca.Pool, ServerName: "localhost"})
	got, err := io.ReadAll(cli)
	if serr := <-done; err != nil || serr != nil || string(got) != "ok" {
		t.Fatalf("client read %q, %v; server: %v", got, err, serr)
	}
	if got := cli.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 7 {
		t.Errorf("server presented serial %d, want 7", got)
	}
	if got := srv.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 8 {
		t.Errorf("client presented serial %d, want 8", got)
	}
}
