package tlsconfig

import (
	"crypto/tls"
	"reflect"
	"strings"
	"testing"
)

// want is the part of a tls.Config that a Policy sets.
type want struct {
	MinVersion, MaxVersion uint16
	CipherSuites           []uint16
	CurvePreferences       []tls.CurveID
}

func TestPolicyConfig(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		want   want
	}{
		{"all unset", Policy{}, want{MinVersion: tls.VersionTLS13}},
		{"only spaces and commas", Policy{MinVersion: " ", MaxVersion: "", CipherSuites: " , ,", CurvePreferences: ","},
			want{MinVersion: tls.VersionTLS13}},
		{"min 1.2", Policy{MinVersion: "1.2"}, want{MinVersion: tls.VersionTLS12}},
		{"min 1.3", Policy{MinVersion: "1.3"}, want{MinVersion: tls.VersionTLS13}},
		{"max 1.3", Policy{MaxVersion: "1.3"}, want{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}},
		{"min and max 1.2", Policy{MinVersion: "1.2", MaxVersion: "1.2"}, want{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}},
		{"versions trimmed", Policy{MinVersion: " 1.2 ", MaxVersion: "1.3 "}, want{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}},
		{"one cipher", Policy{CipherSuites: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
			want{MinVersion: tls.VersionTLS13, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}},
		{"ciphers trimmed, empty items skipped, order kept", Policy{CipherSuites: " TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ,, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,TLS_AES_128_GCM_SHA256,"},
			want{MinVersion: tls.VersionTLS13, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_AES_128_GCM_SHA256}}},
		{"curves by Go name", Policy{CurvePreferences: "CurveP256,CurveP384,CurveP521,X25519,X25519MLKEM768"},
			want{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.CurveP256, tls.CurveP384, tls.CurveP521, tls.X25519, tls.X25519MLKEM768}}},
		{"curves by NIST alias, trimmed", Policy{CurvePreferences: " P-256, P-384 ,P-521,,"},
			want{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.CurveP256, tls.CurveP384, tls.CurveP521}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.policy.Config("QUEUE_PROXY_")
			if err != nil {
				t.Fatalf("Config: %v", err)
			}
			if got.MinVersion != c.want.MinVersion || got.MaxVersion != c.want.MaxVersion ||
				!reflect.DeepEqual(got.CipherSuites, c.want.CipherSuites) || !reflect.DeepEqual(got.CurvePreferences, c.want.CurvePreferences) {
				t.Errorf("got min %x max %x ciphers %v curves %v, want min %x max %x ciphers %v curves %v",
					got.MinVersion, got.MaxVersion, got.CipherSuites, got.CurvePreferences,
					c.want.MinVersion, c.want.MaxVersion, c.want.CipherSuites, c.want.CurvePreferences)
			}
		})
	}
}

func TestPolicyConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		want   []string // substrings of the error
	}{
		{"min 1.1", Policy{MinVersion: "1.1"}, []string{`QUEUE_PROXY_TLS_MIN_VERSION: "1.1": not a supported TLS version`}},
		{"min 1.0", Policy{MinVersion: "1.0"}, []string{`QUEUE_PROXY_TLS_MIN_VERSION: "1.0"`}},
		{"min spelled out", Policy{MinVersion: "TLS1.3"}, []string{`QUEUE_PROXY_TLS_MIN_VERSION: "TLS1.3"`}},
		{"max 1.4", Policy{MaxVersion: "1.4"}, []string{`QUEUE_PROXY_TLS_MAX_VERSION: "1.4": not a supported TLS version`}},
		{"max below default min", Policy{MaxVersion: "1.2"}, []string{`QUEUE_PROXY_TLS_MAX_VERSION: "1.2" is below the minimum version 1.3`}},
		{"max below min", Policy{MinVersion: "1.3", MaxVersion: "1.2"}, []string{`QUEUE_PROXY_TLS_MAX_VERSION: "1.2" is below the minimum version 1.3`}},
		{"unknown cipher", Policy{CipherSuites: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, NOPE"},
			[]string{`QUEUE_PROXY_TLS_CIPHER_SUITES: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, NOPE": unknown cipher suite "NOPE"`}},
		{"cipher in lower case", Policy{CipherSuites: "tls_aes_128_gcm_sha256"}, []string{`unknown cipher suite "tls_aes_128_gcm_sha256"`}},
		{"insecure cipher", Policy{CipherSuites: "TLS_RSA_WITH_RC4_128_SHA"},
			[]string{`QUEUE_PROXY_TLS_CIPHER_SUITES: "TLS_RSA_WITH_RC4_128_SHA": cipher suite "TLS_RSA_WITH_RC4_128_SHA" is insecure`}},
		{"OpenSSL cipher name", Policy{CipherSuites: "ECDHE-RSA-AES128-GCM-SHA256"}, []string{`unknown cipher suite "ECDHE-RSA-AES128-GCM-SHA256"`}},
		{"unknown curve", Policy{CurvePreferences: "X25519,X448"},
			[]string{`QUEUE_PROXY_TLS_CURVE_PREFERENCES: "X25519,X448": unknown curve "X448"`}},
		{"curve in lower case", Policy{CurvePreferences: "p-256"}, []string{`unknown curve "p-256"`}},
		{"every variable wrong at once", Policy{MinVersion: "1", MaxVersion: "2", CipherSuites: "x", CurvePreferences: "y"},
			[]string{"QUEUE_PROXY_TLS_MIN_VERSION", "QUEUE_PROXY_TLS_MAX_VERSION", "QUEUE_PROXY_TLS_CIPHER_SUITES", "QUEUE_PROXY_TLS_CURVE_PREFERENCES"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.policy.Config("QUEUE_PROXY_")
			if err == nil {
				t.Fatal("Config succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestEverySecureSuiteAccepted: the accepted names are exactly crypto/tls's
// secure list, whatever the Go version provides.
func TestEverySecureSuiteAccepted(t *testing.T) {
	var names []string
	var ids []uint16
	for _, cs := range tls.CipherSuites() {
		names = append(names, cs.Name)
		ids = append(ids, cs.ID)
	}
	got, err := ParseCipherSuites(strings.Join(names, ","))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ids) {
		t.Errorf("got %v, want %v", got, ids)
	}
	for _, cs := range tls.InsecureCipherSuites() {
		if _, err := ParseCipherSuites(cs.Name); err == nil {
			t.Errorf("insecure suite %s accepted", cs.Name)
		}
	}
}

func TestPrefixNamesVariables(t *testing.T) {
	_, err := Policy{MinVersion: "x"}.Config("METRICS_PROMETHEUS_")
	if err == nil || !strings.HasPrefix(err.Error(), `METRICS_PROMETHEUS_TLS_MIN_VERSION: "x"`) {
		t.Errorf("error = %v, want it to name METRICS_PROMETHEUS_TLS_MIN_VERSION", err)
	}
}
