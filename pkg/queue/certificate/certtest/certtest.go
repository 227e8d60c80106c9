// Package certtest generates certificates at test run time and lays them out
// on disk the way queue-proxy finds them: plain files, or a Kubernetes secret
// volume (timestamped directory, `..data` symlink, file symlinks through it)
// updated as the kubelet does. For tests only; nothing here is imported by
// the binary.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// File names inside a certificate directory, as Knative mounts them.
const (
	CertName = "tls.crt"
	KeyName  = "tls.key"
)

// CA is a throw-away certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// Pool trusts only this CA.
	Pool *x509.CertPool
	// CertPEM is the CA's certificate, for a file a peer reads its roots
	// (or its client CAs) from.
	CertPEM []byte
}

// NewCA creates a CA valid for a day around now.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "certtest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &CA{cert: cert, key: key, Pool: pool, CertPEM: certPEM}
}

// WriteCertFile writes CertPEM to a new file in t.TempDir() and returns
// its path.
func (ca *CA) WriteCertFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Pair is a PEM certificate and its PEM private key.
type Pair struct {
	CertPEM, KeyPEM []byte
	// Serial identifies the certificate in a handshake
	// (ConnectionState.PeerCertificates[0].SerialNumber).
	Serial int64
}

// Issue returns a server certificate with the given serial for hosts (IP
// addresses or DNS names; 127.0.0.1 and localhost when none are given).
func (ca *CA) Issue(t testing.TB, serial int64, hosts ...string) Pair {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	tmpl := leaf(serial, "certtest ", x509.ExtKeyUsageServerAuth)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.sign(t, tmpl)
}

// IssueClient returns a client certificate with the given serial, as a
// server verifying its clients against Pool accepts (a server certificate
// it refuses).
func (ca *CA) IssueClient(t testing.TB, serial int64) Pair {
	t.Helper()
	return ca.sign(t, leaf(serial, "certtest client ", x509.ExtKeyUsageClientAuth))
}

// leaf is the template of a certificate for usage, valid for a day around
// now, named prefix and the serial.
func leaf(serial int64, prefix string, usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: prefix + strconv.FormatInt(serial, 10)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

// sign issues tmpl with a new key, signed by the CA.
func (ca *CA) sign(t testing.TB, tmpl *x509.Certificate) Pair {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Serial:  tmpl.SerialNumber.Int64(),
	}
}

// TLSCertificate is the pair as a tls.Config presents it.
func (p Pair) TLSCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Dir is a certificate directory holding tls.crt and tls.key.
type Dir struct {
	// Path is the directory.
	Path      string
	projected bool
	gen       int
}

// NewDir returns a directory in t.TempDir() holding p as plain files.
func NewDir(t testing.TB, p Pair) *Dir {
	t.Helper()
	d := &Dir{Path: t.TempDir()}
	d.Write(t, p)
	return d
}

// NewProjectedDir returns a directory in t.TempDir() holding p as a
// Kubernetes secret volume does: ..<timestamp>/tls.{crt,key}, a ..data
// symlink to it, and tls.crt, tls.key symlinks to ..data/tls.{crt,key}.
func NewProjectedDir(t testing.TB, p Pair) *Dir {
	t.Helper()
	return NewProjectedDirAt(t, t.TempDir(), p)
}

// NewProjectedDirAt is NewProjectedDir at path, which is created if missing
// and must not hold a certificate yet.
func NewProjectedDirAt(t testing.TB, path string, p Pair) *Dir {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Dir{Path: path, projected: true}
	d.Write(t, p)
	for _, name := range []string{CertName, KeyName} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.Path, name)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// CertFile is the path of tls.crt.
func (d *Dir) CertFile() string { return filepath.Join(d.Path, CertName) }

// KeyFile is the path of tls.key.
func (d *Dir) KeyFile() string { return filepath.Join(d.Path, KeyName) }

// Write replaces the pair. A projected directory is updated as the kubelet
// updates a secret volume: the files go to a new timestamped directory, a
// ..data_tmp symlink to it is renamed over ..data (one atomic step), and the
// old directory is removed. A plain directory gets each file replaced by a
// rename, tls.crt first.
func (d *Dir) Write(t testing.TB, p Pair) {
	t.Helper()
	if !d.projected {
		d.WriteFile(t, CertName, p.CertPEM)
		d.WriteFile(t, KeyName, p.KeyPEM)
		return
	}
	d.gen++
	old := d.generation(d.gen - 1)
	cur := d.generation(d.gen)
	if err := os.Mkdir(filepath.Join(d.Path, cur), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{CertName: p.CertPEM, KeyName: p.KeyPEM} {
		if err := os.WriteFile(filepath.Join(d.Path, cur, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(d.Path, "..data_tmp")
	if err := os.Symlink(cur, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Path, "..data")); err != nil {
		t.Fatal(err)
	}
	if d.gen > 1 {
		if err := os.RemoveAll(filepath.Join(d.Path, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// WriteFile atomically replaces one file of a plain directory (name is
// CertName or KeyName), by writing a temporary file and renaming it.
func (d *Dir) WriteFile(t testing.TB, name string, b []byte) {
	t.Helper()
	if d.projected {
		t.Fatal("certtest: WriteFile on a projected directory; use Write")
	}
	tmp := filepath.Join(d.Path, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Path, name)); err != nil {
		t.Fatal(err)
	}
}

func (d *Dir) generation(n int) string {
	return "..2026_01_01_00_00_00." + strconv.Itoa(n)
}
