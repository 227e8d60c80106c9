package tlsconfig

import (
	"crypto/tls"
	"errors"
	"slices"
)

// ErrHTTP2Cipher explains why HTTP2CipherOK refused a configuration.
var ErrHTTP2Cipher = errors.New("HTTP/2 needs TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 in the cipher list when TLS 1.2 is allowed (RFC 7540 §9.2.2)")

// HTTP2CipherOK reports whether HTTP/2 may be served with cfg: when TLS 1.2
// is allowed and a cipher list is set, it must contain one of the suites
// RFC 7540 §9.2.2 makes mandatory. (net/http's HTTP/2 server refuses to
// serve otherwise; TLS 1.3 suites are not configurable.)
func HTTP2CipherOK(cfg *tls.Config) bool {
	if cfg.CipherSuites == nil || cfg.MinVersion >= tls.VersionTLS13 {
		return true
	}
	return slices.Contains(cfg.CipherSuites, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) ||
		slices.Contains(cfg.CipherSuites, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
}
