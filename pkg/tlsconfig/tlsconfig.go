// Package tlsconfig turns an operator's textual TLS policy into a server
// *tls.Config. The policy is the one Knative reads from
// <PREFIX>TLS_MIN_VERSION, <PREFIX>TLS_MAX_VERSION, <PREFIX>TLS_CIPHER_SUITES
// and <PREFIX>TLS_CURVE_PREFERENCES (CONTRACT.md §1b, §7); the prefix is
// "QUEUE_PROXY_" for the serving port and "METRICS_PROMETHEUS_" for the user
// metrics port. Reading the environment is the caller's business: this
// package only parses values, so that each caller keeps its variables in its
// own envconfig struct.
//
// Accepted values:
//   - versions: "1.2" or "1.3";
//   - cipher suites: comma-separated names of crypto/tls's secure suites
//     (tls.CipherSuites()), spaces around names trimmed, empty items skipped;
//   - curves: comma-separated CurveP256, CurveP384, CurveP521, X25519,
//     X25519MLKEM768 or the aliases P-256, P-384, P-521, trimmed and skipped
//     the same way.
//
// An empty value (or one of only separators and spaces) means unset: the
// minimum version is then TLS 1.3 and the rest are crypto/tls's defaults.
package tlsconfig

import (
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
)

// DefaultMinVersion is the minimum TLS version when none is configured.
const DefaultMinVersion = tls.VersionTLS13

// Policy is the textual TLS policy, one field per variable.
type Policy struct {
	MinVersion       string
	MaxVersion       string
	CipherSuites     string
	CurvePreferences string
}

// Config returns a server *tls.Config carrying the policy; the caller adds
// the certificate (Certificates or GetCertificate) and NextProtos. prefix
// names the variables in errors: with "QUEUE_PROXY_" an invalid minimum is
// reported as `QUEUE_PROXY_TLS_MIN_VERSION: "1.1" is not ...`. Every invalid
// variable is reported, joined in one error.
func (p Policy) Config(prefix string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: DefaultMinVersion}
	var errs []error
	wrap := func(name, value string, err error) error {
		return errors.New(prefix + name + ": " + strconv.Quote(value) + ": " + err.Error())
	}

	if v, err := ParseVersion(p.MinVersion); err != nil {
		errs = append(errs, wrap("TLS_MIN_VERSION", p.MinVersion, err))
	} else if v != 0 {
		cfg.MinVersion = v
	}
	if v, err := ParseVersion(p.MaxVersion); err != nil {
		errs = append(errs, wrap("TLS_MAX_VERSION", p.MaxVersion, err))
	} else if v != 0 {
		cfg.MaxVersion = v
	}
	if cs, err := ParseCipherSuites(p.CipherSuites); err != nil {
		errs = append(errs, wrap("TLS_CIPHER_SUITES", p.CipherSuites, err))
	} else {
		cfg.CipherSuites = cs
	}
	if cp, err := ParseCurvePreferences(p.CurvePreferences); err != nil {
		errs = append(errs, wrap("TLS_CURVE_PREFERENCES", p.CurvePreferences, err))
	} else {
		cfg.CurvePreferences = cp
	}
	if len(errs) == 0 && cfg.MaxVersion != 0 && cfg.MaxVersion < cfg.MinVersion {
		// crypto/tls would accept this config and then fail every
		// handshake with "no supported versions"; say so at startup.
		errs = append(errs, errors.New(prefix+"TLS_MAX_VERSION: "+strconv.Quote(p.MaxVersion)+
			" is below the minimum version "+versionNumber(cfg.MinVersion)+
			" (set "+prefix+"TLS_MIN_VERSION to allow it)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ParseVersion parses "1.2" or "1.3"; an empty value gives 0 (unset).
func ParseVersion(s string) (uint16, error) {
	switch strings.TrimSpace(s) {
	case "":
		return 0, nil
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, errors.New(`not a supported TLS version (use "1.2" or "1.3")`)
}

func versionNumber(v uint16) string {
	if v == tls.VersionTLS12 {
		return "1.2"
	}
	return "1.3"
}

// ParseCipherSuites parses a comma-separated list of secure cipher suite
// names; an empty list gives nil (crypto/tls's defaults).
func ParseCipherSuites(s string) ([]uint16, error) {
	var ids []uint16
	for _, name := range items(s) {
		id, ok := secureSuite(name)
		if !ok {
			if insecureSuite(name) {
				return nil, errors.New("cipher suite " + strconv.Quote(name) + " is insecure and not accepted")
			}
			return nil, errors.New("unknown cipher suite " + strconv.Quote(name))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func secureSuite(name string) (uint16, bool) {
	for _, cs := range tls.CipherSuites() {
		if cs.Name == name {
			return cs.ID, true
		}
	}
	return 0, false
}

func insecureSuite(name string) bool {
	for _, cs := range tls.InsecureCipherSuites() {
		if cs.Name == name {
			return true
		}
	}
	return false
}

// curves maps the accepted curve names to their IDs.
var curves = map[string]tls.CurveID{
	"CurveP256":      tls.CurveP256,
	"CurveP384":      tls.CurveP384,
	"CurveP521":      tls.CurveP521,
	"X25519":         tls.X25519,
	"X25519MLKEM768": tls.X25519MLKEM768,
	"P-256":          tls.CurveP256,
	"P-384":          tls.CurveP384,
	"P-521":          tls.CurveP521,
}

// ParseCurvePreferences parses a comma-separated list of curve names; an
// empty list gives nil (crypto/tls's defaults).
func ParseCurvePreferences(s string) ([]tls.CurveID, error) {
	var ids []tls.CurveID
	for _, name := range items(s) {
		id, ok := curves[name]
		if !ok {
			return nil, errors.New("unknown curve " + strconv.Quote(name) +
				" (use CurveP256, CurveP384, CurveP521, X25519, X25519MLKEM768, P-256, P-384 or P-521)")
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// items splits a comma-separated list, trimming spaces and skipping empty
// items.
func items(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
