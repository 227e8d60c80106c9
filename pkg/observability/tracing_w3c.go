package observability

import (
	"net/http"
	"strings"

	"go.opencensus.io/trace"
	"go.opencensus.io/trace/tracestate"
)

// tracestateHeader is W3C's tracestate, in Go's canonical form.
const tracestateHeader = "Tracestate"

// traceFlagsW3C are the trace flags the W3C propagator keeps: sampled (0x01)
// and random (0x02).
const traceFlagsW3C = 0x03

// TraceparentFromHeader returns the incoming W3C trace context as the
// OpenTelemetry Go SDK's TraceContext propagator (v1.47.0) reads it, the
// newest generation's only format (CONTRACT.md §5.6):
//
//   - the first `traceparent` value: version, trace id, span id and flags
//     as lower-case hex of 2, 32, 16 and 2 digits; version ff invalid;
//     version 00 with no further fields and no flag bits above 0x03; a
//     later version may carry more fields, which are ignored; all-zero ids
//     are invalid. Only the sampled and random flags are kept.
//   - the first `tracestate` value, when valid, becomes the context's
//     tracestate; an invalid one is dropped without affecting traceparent.
//
// B3 headers are not read. A context without tracestate allocates nothing.
func TraceparentFromHeader(h http.Header) (trace.SpanContext, bool) {
	v := first(h, traceparentHeader)
	if v == "" {
		return trace.SpanContext{}, false
	}
	var sc trace.SpanContext
	var ver, flags [1]byte
	if !w3cPart(ver[:], &v) || ver[0] == 0xff ||
		!w3cPart(sc.TraceID[:], &v) || !w3cPart(sc.SpanID[:], &v) || !w3cPart(flags[:], &v) {
		return trace.SpanContext{}, false
	}
	if ver[0] == 0 && (v != "" || flags[0] > traceFlagsW3C) {
		return trace.SpanContext{}, false
	}
	sc.TraceOptions = trace.TraceOptions(flags[0] & traceFlagsW3C)
	if ts := first(h, tracestateHeader); ts != "" {
		sc.Tracestate = parseTracestate(ts)
	}
	return checked(sc)
}

// w3cPart decodes the next "-"-separated field of *s, which must be exactly
// 2*len(dst) lower-case hex digits, and advances *s past it. Like the
// SDK, the field ends at the next "-" or at the end of the value.
func w3cPart(dst []byte, s *string) bool {
	part, rest, _ := strings.Cut(*s, "-")
	*s = rest
	if len(part) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(part); i++ {
		if c := part[i]; c >= 'A' && c <= 'F' {
			return false
		}
	}
	return decodeHex(dst, part)
}

// parseTracestate parses a tracestate value into OpenCensus' tracestate:
// comma-separated key=value members around optional blanks, empty members
// skipped, at most 32, keys
// unique, keys and values valid per W3C. Anything invalid drops the whole
// value (nil), as the SDK drops it.
func parseTracestate(v string) *tracestate.Tracestate {
	var entries []tracestate.Entry
	for member := range strings.SplitSeq(v, ",") {
		if member == "" {
			continue // only an empty member is skipped; a blank one is invalid
		}
		member = strings.Trim(member, " \t")
		key, value, ok := strings.Cut(member, "=")
		if !ok {
			return nil
		}
		entries = append(entries, tracestate.Entry{Key: key, Value: value})
	}
	if len(entries) == 0 {
		return nil
	}
	ts, err := tracestate.New(nil, entries...)
	if err != nil {
		return nil
	}
	return ts
}

// SetTraceparent writes sc into h as the SDK's TraceContext propagator
// injects it: `traceparent` (version 00, the sampled and random flags) and,
// when sc has entries, `tracestate` ("k=v,k=v"); nothing for a context with
// a zero id. B3 headers and baggage are left as they are.
func SetTraceparent(h http.Header, sc trace.SpanContext) {
	if _, ok := checked(sc); !ok {
		return // the SDK injects nothing for an invalid context
	}
	h[traceparentHeader] = []string{traceparent(sc, byte(sc.TraceOptions)&traceFlagsW3C)}
	if ts := tracestateString(sc.Tracestate); ts != "" {
		h[tracestateHeader] = []string{ts}
	}
}

// traceparent is sc as a version-00 traceparent value with the given flags
// byte: "00-" trace(32) "-" span(16) "-" flags(2), 55 bytes.
func traceparent(sc trace.SpanContext, flags byte) string {
	var buf [55]byte
	copy(buf[:], "00-")
	encodeHex(buf[3:35], sc.TraceID[:])
	buf[35] = '-'
	encodeHex(buf[36:52], sc.SpanID[:])
	buf[52] = '-'
	encodeHex(buf[53:55], []byte{flags})
	return string(buf[:])
}
