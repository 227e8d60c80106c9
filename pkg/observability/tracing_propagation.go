package observability

import (
	"net/http"
	"strings"

	"go.opencensus.io/trace"
)

// Trace-context headers, in Go's canonical form so that they index an
// http.Header directly.
const (
	traceparentHeader = "Traceparent"
	b3TraceIDHeader   = "X-B3-Traceid"
	b3SpanIDHeader    = "X-B3-Spanid"
	b3SampledHeader   = "X-B3-Sampled"
	b3FlagsHeader     = "X-B3-Flags"
	b3ParentHeader    = "X-B3-Parentspanid"
	b3SingleHeader    = "B3"
)

// SpanContextFromHeader returns the trace context an incoming request
// carries, trying in order (the first valid one wins):
//
//  1. W3C Trace Context `traceparent`, parsed exactly as OpenCensus'
//     tracecontext format (what Knative 1.15 used): version 2 hex digits
//     (ff invalid; version 00 has exactly four fields), a 32-digit trace id, a
//     16-digit span id, and flags of which the first byte is kept;
//  2. B3 multi-header (`X-B3-TraceId` of up to 32 hex digits, `X-B3-SpanId`
//     of up to 16, `X-B3-Sampled` 1/true; `X-B3-Flags: 1`, B3's debug, also
//     means sampled), as OpenCensus' b3 format;
//  3. the B3 single header `b3: {traceid}-{spanid}[-{1|0|d}[-{parent}]]`.
//
// All-zero trace or span ids are rejected. Hex digits may be upper or lower
// case. `tracestate` is not parsed: the proxy forwards it unchanged.
// Parsing does not allocate.
func SpanContextFromHeader(h http.Header) (trace.SpanContext, bool) {
	if v, ok := single(h, traceparentHeader); ok {
		if sc, ok := parseTraceparent(v); ok {
			return sc, true
		}
	}
	if sc, ok := parseB3Multi(h); ok {
		return sc, true
	}
	if v, ok := single(h, b3SingleHeader); ok {
		return parseB3Single(v)
	}
	return trace.SpanContext{}, false
}

// single returns the header's value when it is present exactly once.
func single(h http.Header, key string) (string, bool) {
	v := h[key]
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

func parseTraceparent(v string) (sc trace.SpanContext, ok bool) {
	// version "-" trace-id "-" parent-id "-" flags [ "-" more, version > 0 ]
	version, rest, found := strings.Cut(v, "-")
	var ver [1]byte
	if !found || len(version) != 2 || !decodeHex(ver[:], version) || ver[0] == 0xff {
		return sc, false
	}
	tid, rest, found := strings.Cut(rest, "-")
	if !found || len(tid) != 32 || !decodeHex(sc.TraceID[:], tid) {
		return sc, false
	}
	sid, rest, found := strings.Cut(rest, "-")
	if !found || len(sid) != 16 || !decodeHex(sc.SpanID[:], sid) {
		return sc, false
	}
	flags, _, more := strings.Cut(rest, "-")
	if more && ver[0] == 0 {
		return sc, false
	}
	// Like OpenCensus: the flags field is hex of any even length; its first
	// byte is the trace options.
	if len(flags) < 2 || len(flags)%2 != 0 || !validHex(flags) {
		return sc, false
	}
	var opts [1]byte
	decodeHex(opts[:], flags[:2])
	sc.TraceOptions = trace.TraceOptions(opts[0])
	return checked(sc)
}

func parseB3Multi(h http.Header) (sc trace.SpanContext, ok bool) {
	tid, sid := first(h, b3TraceIDHeader), first(h, b3SpanIDHeader)
	if !decodeHexRight(sc.TraceID[:], tid) || !decodeHexRight(sc.SpanID[:], sid) {
		return trace.SpanContext{}, false
	}
	switch first(h, b3SampledHeader) {
	case "1", "true":
		sc.TraceOptions = 1
	}
	if first(h, b3FlagsHeader) == "1" {
		sc.TraceOptions = 1
	}
	return checked(sc)
}

func parseB3Single(v string) (sc trace.SpanContext, ok bool) {
	tid, rest, found := strings.Cut(v, "-")
	if !found || (len(tid) != 16 && len(tid) != 32) || !decodeHexRight(sc.TraceID[:], tid) {
		return trace.SpanContext{}, false
	}
	sid, rest, more := strings.Cut(rest, "-")
	if len(sid) != 16 || !decodeHex(sc.SpanID[:], sid) {
		return trace.SpanContext{}, false
	}
	if more {
		sampling, parent, hasParent := strings.Cut(rest, "-")
		switch sampling {
		case "1", "d":
			sc.TraceOptions = 1
		case "0":
		default:
			return trace.SpanContext{}, false
		}
		var p [8]byte
		if hasParent && (len(parent) != 16 || !decodeHex(p[:], parent)) {
			return trace.SpanContext{}, false
		}
	}
	return checked(sc)
}

func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// checked rejects all-zero trace and span ids.
func checked(sc trace.SpanContext) (trace.SpanContext, bool) {
	if sc.TraceID == (trace.TraceID{}) || sc.SpanID == (trace.SpanID{}) {
		return trace.SpanContext{}, false
	}
	return sc, true
}

// SetSpanContextHeaders writes sc into h for an outgoing request in both
// formats Knative 1.15 wrote (W3C and B3 multi-header): `traceparent`
// (version 00, flags 01 or 00), `X-B3-TraceId`, `X-B3-SpanId` and
// `X-B3-Sampled`. A stale `X-B3-ParentSpanId` is removed; a `b3` single
// header, if the request has one, is rewritten to sc so that no header
// names another span. `tracestate` is left as it is. It allocates twice: one
// string shared by all values and one slice for the header values.
func SetSpanContextHeaders(h http.Header, sc trace.SpanContext) {
	// "00-" trace(32) "-" span(16) "-" flags(2): 55 bytes; the B3 values are
	// substrings of it.
	var buf [55]byte
	copy(buf[:], "00-")
	encodeHex(buf[3:35], sc.TraceID[:])
	buf[35] = '-'
	encodeHex(buf[36:52], sc.SpanID[:])
	buf[52], buf[53], buf[54] = '-', '0', '0'
	sampled := "0"
	if sc.IsSampled() {
		buf[54], sampled = '1', "1"
	}
	tp := string(buf[:])
	vals := make([]string, 4)
	vals[0], vals[1], vals[2], vals[3] = tp, tp[3:35], tp[36:52], sampled
	h[traceparentHeader] = vals[0:1:1]
	h[b3TraceIDHeader] = vals[1:2:2]
	h[b3SpanIDHeader] = vals[2:3:3]
	h[b3SampledHeader] = vals[3:4:4]
	delete(h, b3ParentHeader)
	if _, ok := h[b3SingleHeader]; ok {
		h[b3SingleHeader] = []string{tp[3:52] + "-" + sampled}
	}
}

const hexDigits = "0123456789abcdef"

func encodeHex(dst, src []byte) {
	for i, b := range src {
		dst[2*i], dst[2*i+1] = hexDigits[b>>4], hexDigits[b&0x0f]
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func validHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// decodeHex decodes s, of exactly 2*len(dst) hex digits, into dst.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// decodeHexRight decodes s, a non-empty even number of hex digits encoding
// at most len(dst) bytes, right-aligned into dst (B3 allows 64-bit trace
// ids, which are the low half of a 128-bit one).
func decodeHexRight(dst []byte, s string) bool {
	if s == "" || len(s)%2 != 0 || len(s) > 2*len(dst) {
		return false
	}
	clear(dst)
	return decodeHex(dst[len(dst)-len(s)/2:], s)
}
