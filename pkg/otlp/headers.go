package otlp

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// The OTEL_EXPORTER_OTLP_HEADERS format, as the OpenTelemetry Go exporters
// read it: comma-separated `key=value` entries; the key is trimmed and must
// be an HTTP token; the value is percent-decoded (url.PathUnescape) and then
// trimmed. A later entry with the same key replaces an earlier one (keys
// compare case-insensitively, as HTTP and gRPC metadata do).
//
// Where the exporters log a bad entry and skip it, ParseHeaders rejects the
// whole value, naming the entry by position but never quoting it (header
// values are often credentials). Blank entries (a trailing comma) are
// skipped. A value that would be invalid on the wire (control characters
// after decoding) is an error too, except for binary keys (ending in
// "-bin"), which gRPC sends base64-encoded.

// Header is one header sent with every export request (gRPC metadata for
// the gRPC transport).
type Header struct {
	Name, Value string
}

// ParseHeaders decodes an OTEL_EXPORTER_OTLP_HEADERS value.
func ParseHeaders(s string) ([]Header, error) {
	var hs []Header
	for i, entry := range strings.Split(s, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, headerError(i, `has no "="`)
		}
		k = strings.TrimSpace(k)
		if !isToken(k) {
			return nil, headerError(i, "has an invalid key")
		}
		v, err := url.PathUnescape(v)
		if err != nil {
			return nil, headerError(i, "has an invalid percent-encoding in its value")
		}
		v = strings.TrimSpace(v)
		if !isBinaryKey(k) && !validHeaderValue(v) {
			return nil, headerError(i, "has a control character in its value")
		}
		hs = setHeader(hs, k, v)
	}
	return hs, nil
}

func setHeader(hs []Header, k, v string) []Header {
	for i := range hs {
		if strings.EqualFold(hs[i].Name, k) {
			hs[i].Value = v
			return hs
		}
	}
	return append(hs, Header{Name: k, Value: v})
}

func headerError(i int, what string) error {
	return errors.New("entry " + strconv.Itoa(i+1) + " " + what)
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 tchar).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isBinaryKey reports whether k names gRPC binary metadata.
func isBinaryKey(k string) bool {
	return len(k) > 4 && strings.EqualFold(k[len(k)-4:], "-bin")
}

// validHeaderValue reports whether net/http will send v as a field value:
// no control characters other than horizontal tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// redactedHeaders renders the header names with their values hidden, for
// logs.
func redactedHeaders(hs []Header) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, h := range hs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h.Name)
		b.WriteString("=<redacted>")
	}
	b.WriteByte(']')
	return b.String()
}
