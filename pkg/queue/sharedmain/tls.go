package sharedmain

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"
	"knative.dev/networking/pkg/certificates"

	"github.com/queue-proxy/queue-proxy/pkg/queue"
	"github.com/queue-proxy/queue-proxy/pkg/queue/certificate"
	"github.com/queue-proxy/queue-proxy/pkg/tlsconfig"
)

// serverMainTLS is the TLS main server's name in the log and in tests.
const serverMainTLS = "main tls"

// tlsEnvPrefix starts the names of the TLS policy variables.
const tlsEnvPrefix = "QUEUE_PROXY_"

// tlsEnv is the environment of the TLS main server (CONTRACT.md §1b, §7).
// The policy variables are kept as text and parsed only when TLS is on, as
// Knative does: with no certificate mounted, their values do not matter.
type tlsEnv struct {
	CertDir          string `envconfig:"QP_CERT_DIR" default:"/var/lib/knative/certs" desc:"Directory of the serving certificate (tls.crt) and key (tls.key). When both exist, the main handler is also served over TLS on QUEUE_SERVING_TLS_PORT, and the pair is reloaded when it changes. Empty means the default, where Knative mounts them."`
	MinVersion       string `envconfig:"QUEUE_PROXY_TLS_MIN_VERSION" default:"1.3" desc:"Minimum TLS version of the TLS server: 1.2 or 1.3. Empty means 1.3. Read only when TLS is on."`
	MaxVersion       string `envconfig:"QUEUE_PROXY_TLS_MAX_VERSION" desc:"Maximum TLS version of the TLS server: 1.2 or 1.3. Empty means Go's default (1.3). Read only when TLS is on."`
	CipherSuites     string `envconfig:"QUEUE_PROXY_TLS_CIPHER_SUITES" desc:"Comma-separated TLS 1.2 cipher suites, by their Go names (crypto/tls CipherSuites, secure ones only). With TLS 1.2 allowed, the list must contain TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (HTTP/2). Empty means Go's defaults. Read only when TLS is on."`
	CurvePreferences string `envconfig:"QUEUE_PROXY_TLS_CURVE_PREFERENCES" desc:"Comma-separated key exchange groups: CurveP256, CurveP384, CurveP521, X25519, X25519MLKEM768, P-256, P-384, P-521. Empty means Go's defaults. Read only when TLS is on."`
}

func init() { envSpecs = append(envSpecs, tlsEnv{}) }

// newTLSServer returns the "main tls" server on QUEUE_SERVING_TLS_PORT when
// the serving certificate is mounted, serving h with the same chain as the
// plain main server (CONTRACT.md §7), and a func that stops its certificate
// watcher; nil, no-op when TLS is off.
//
// TLS is on when both tls.crt and tls.key exist in QP_CERT_DIR; an error
// other than "does not exist" when looking for them is fatal. The server
// speaks HTTP/1.1 and HTTP/2, chosen by ALPN, with the QUEUE_PROXY_TLS_*
// policy, and takes its certificate from a certificate.Watcher, so rotated
// files are served without a restart. Its listener is open on return; the
// caller serves and shuts it down with the other servers.
func newTLSServer(cfg *config, logger *zap.SugaredLogger, h http.Handler) (*server, func(), error) {
	noop := func() {}
	var env tlsEnv
	if err := envconfig.Process("", &env); err != nil {
		return nil, noop, err
	}
	dir := env.CertDir
	if dir == "" {
		dir = queue.CertDirectory
	}
	certFile := filepath.Join(dir, certificates.CertName)
	keyFile := filepath.Join(dir, certificates.PrivateKeyName)
	on, err := certsPresent(logger, certFile, keyFile)
	if err != nil || !on {
		return nil, noop, err
	}

	// Only now, with TLS on, is the policy read (Knative does the same).
	tlsCfg, err := tlsconfig.Policy{
		MinVersion:       env.MinVersion,
		MaxVersion:       env.MaxVersion,
		CipherSuites:     env.CipherSuites,
		CurvePreferences: env.CurvePreferences,
	}.Config(tlsEnvPrefix)
	if err != nil {
		return nil, noop, errors.New("failed to read TLS configuration from environment: " + err.Error())
	}
	tlsCfg.NextProtos = []string{"h2", "http/1.1"}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    mainMaxHeaderBytes,
		TLSConfig:         tlsCfg,
	}
	// net/http's HTTP/2 server (set up when serving starts, for the "h2" in
	// NextProtos) answers h2 by ALPN and sends GOAWAY on Shutdown. It would
	// refuse to serve at all when TLS 1.2 is allowed with a cipher list
	// lacking HTTP/2's mandatory suite; that is a startup error here.
	if !tlsconfig.HTTP2CipherOK(tlsCfg) {
		return nil, noop, errors.New("failed to read TLS configuration from environment: " +
			tlsEnvPrefix + "TLS_CIPHER_SUITES: " + strconv.Quote(env.CipherSuites) + ": " + tlsconfig.ErrHTTP2Cipher.Error())
	}

	watcher, err := certificate.NewWatcher(certFile, keyFile, logger)
	if err != nil {
		return nil, noop, errors.New("failed to create certWatcher: " + err.Error())
	}
	tlsCfg.GetCertificate = watcher.GetCertificate

	ln, err := net.Listen("tcp", ":"+cfg.QueueServingTLSPort)
	if err != nil {
		watcher.Stop()
		return nil, noop, errors.New("server " + serverMainTLS + ": " + err.Error())
	}
	logger.Infow("Serving TLS with the certificate in "+dir, zap.String("minVersion", tls.VersionName(tlsCfg.MinVersion)))
	return &server{name: serverMainTLS, srv: srv, ln: tls.NewListener(ln, tlsCfg)}, watcher.Stop, nil
}

// certsPresent reports whether both files exist; a missing one means TLS
// is off (with a warning when only the other exists), any other stat error
// (permissions, I/O) is returned.
func certsPresent(logger *zap.SugaredLogger, certFile, keyFile string) (bool, error) {
	var missing []string
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, f)
		} else if err != nil {
			return false, errors.New("checking for the TLS certificate: " + err.Error())
		}
	}
	if len(missing) == 1 {
		logger.Warnw("TLS is off: the certificate or its key is missing", zap.String("missing", missing[0]))
	}
	return len(missing) == 0, nil
}
