package observability

import (
	"net/http"
	"strings"

	"go.opencensus.io/trace"
	"go.opencensus.io/trace/tracestate"
)

// Trace-context headers, in Go's canonical form so that they index an
// http.Header directly.
const (
	traceparentHeader = "Traceparent"
	b3TraceIDHeader   = "X-B3-Traceid"
	b3SpanIDHeader    = "X-B3-Spanid"
	b3SampledHeader   = "X-B3-Sampled"
	b3FlagsHeader     = "X-B3-Flags"
)

// SpanContextFromHeader returns the trace context an incoming request
// carries as Knative 1.15's formats (tracecontextb3's ingress: OpenCensus'
// tracecontext, then its b3) read it, the first valid one winning:
//
//  1. W3C Trace Context `traceparent`, parsed exactly as OpenCensus'
//     tracecontext format: version 2 hex digits (ff invalid; version 00 has
//     exactly four fields), a 32-digit trace id, a 16-digit span id, and
//     flags of which the first byte is kept; with it, `tracestate`
//     (ocTracestate);
//  2. B3 multi-header (`X-B3-TraceId` of up to 32 hex digits, `X-B3-SpanId`
//     of up to 16, `X-B3-Sampled` 1/true; `X-B3-Flags: 1`, B3's debug, also
//     means sampled), as OpenCensus' b3 format. The single `b3` header is
//     not read (OpenCensus' b3 format does not know it).
//
// All-zero trace or span ids are rejected. Hex digits may be upper or lower
// case. Parsing a context without tracestate does not allocate.
func SpanContextFromHeader(h http.Header) (trace.SpanContext, bool) {
	if v, ok := single(h, traceparentHeader); ok {
		if sc, ok := parseTraceparent(v); ok {
			if ts := h[tracestateHeader]; len(ts) > 0 {
				sc.Tracestate = ocTracestate(ts)
			}
			return sc, true
		}
	}
	return parseB3Multi(h)
}

// ocTracestate parses tracestate values (several are joined by commas) as
// OpenCensus' tracecontext format does: each member, blanks around it
// trimmed, must be key=value and not blank; the members without blanks and
// with their commas at most 512 bytes; keys and values valid and keys unique
// (tracestate.New). Anything else is no tracestate at all (nil).
func ocTracestate(values []string) *tracestate.Tracestate {
	v := values[0]
	if len(values) > 1 {
		v = strings.Join(values, ",")
	}
	if v == "" {
		return nil
	}
	var entries []tracestate.Entry
	size := strings.Count(v, ",")
	for member := range strings.SplitSeq(v, ",") {
		member = strings.Trim(member, " \t")
		size += len(member)
		if member == "" || size > maxTracestateLen {
			return nil
		}
		key, value, ok := strings.Cut(member, "=")
		if !ok || strings.Contains(value, "=") {
			return nil
		}
		entries = append(entries, tracestate.Entry{Key: key, Value: value})
	}
	ts, err := tracestate.New(nil, entries...)
	if err != nil {
		return nil
	}
	return ts
}

// maxTracestateLen is the longest tracestate OpenCensus reads or writes.
const maxTracestateLen = 512

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
// formats Knative 1.15 wrote (tracecontextb3's egress: W3C and B3
// multi-header): `traceparent` (version 00, the trace options byte),
// `tracestate` when sc has one (at most 512 bytes), `X-B3-TraceId`,
// `X-B3-SpanId` and `X-B3-Sampled`. Other trace headers the request
// carries (`X-B3-ParentSpanId`, `X-B3-Flags`, `b3`, a `tracestate` when sc
// has none) are left as they are, as OpenCensus leaves them. Without
// tracestate it allocates twice: one string shared by all values and one
// slice for the header values.
func SetSpanContextHeaders(h http.Header, sc trace.SpanContext) {
	sampled := "0"
	if sc.IsSampled() {
		sampled = "1"
	}
	tp := traceparent(sc, byte(sc.TraceOptions)) // the B3 values are substrings of it
	vals := make([]string, 4)
	vals[0], vals[1], vals[2], vals[3] = tp, tp[3:35], tp[36:52], sampled
	h[traceparentHeader] = vals[0:1:1]
	h[b3TraceIDHeader] = vals[1:2:2]
	h[b3SpanIDHeader] = vals[2:3:3]
	h[b3SampledHeader] = vals[3:4:4]
	if ts := tracestateString(sc.Tracestate); ts != "" && len(ts) <= maxTracestateLen {
		h[tracestateHeader] = []string{ts}
	}
}

// tracestateString is ts as a header value, "k=v,k=v" ("" for none).
func tracestateString(ts *tracestate.Tracestate) string {
	if ts == nil {
		return ""
	}
	entries := ts.Entries()
	if len(entries) == 0 {
		return ""
	}
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
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
