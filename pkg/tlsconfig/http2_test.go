package tlsconfig

import (
	"crypto/tls"
	"testing"
)

func TestHTTP2CipherOK(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want bool
	}{
		{"no cipher list", &tls.Config{MinVersion: tls.VersionTLS12}, true},
		{"TLS 1.3 only", &tls.Config{MinVersion: tls.VersionTLS13, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, true},
		{"TLS 1.2 with the RSA suite", &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 with the ECDSA suite", &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 without either", &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, false},
		{"min version unset means TLS 1.2 allowed", &tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, false},
	} {
		if got := HTTP2CipherOK(tc.cfg); got != tc.want {
			t.Errorf("%s: HTTP2CipherOK = %v, want %v", tc.name, got, tc.want)
		}
	}
}
