package observability

import (
	"net/http"
	"strings"
	"testing"

	"go.opencensus.io/plugin/ochttp/propagation/b3"
	"go.opencensus.io/plugin/ochttp/propagation/tracecontext"
	"go.opencensus.io/trace"
)

const (
	tidHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	sidHex = "00f067aa0ba902b7"
)

var (
	tid = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sid = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	// tid64 is a 64-bit B3 trace id, the low half of a 128-bit one.
	tid64 = trace.TraceID{8: 0xa3, 9: 0xce, 10: 0x92, 11: 0x9d, 12: 0x0e, 13: 0x0e, 14: 0x47, 15: 0x36}
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestSpanContextFromHeader(t *testing.T) {
	sampled := trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 1}
	unsampled := trace.SpanContext{TraceID: tid, SpanID: sid}
	otherSID := trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
	cases := []struct {
		name   string
		h      http.Header
		want   trace.SpanContext
		wantOK bool
	}{
		{"none", header(), trace.SpanContext{}, false},

		// W3C traceparent.
		{"traceparent sampled", header("traceparent", "00-"+tidHex+"-"+sidHex+"-01"), sampled, true},
		{"traceparent unsampled", header("traceparent", "00-"+tidHex+"-"+sidHex+"-00"), unsampled, true},
		{"traceparent upper-case hex", header("traceparent", "00-"+strings.ToUpper(tidHex)+"-"+strings.ToUpper(sidHex)+"-01"), sampled, true},
		{"traceparent other flag bits kept", header("traceparent", "00-"+tidHex+"-"+sidHex+"-03"), trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 3}, true},
		{"traceparent future version with more fields", header("traceparent", "01-"+tidHex+"-"+sidHex+"-01-what-ever"), sampled, true},
		{"traceparent version 00 with more fields", header("traceparent", "00-"+tidHex+"-"+sidHex+"-01-x"), trace.SpanContext{}, false},
		{"traceparent version ff", header("traceparent", "ff-"+tidHex+"-"+sidHex+"-01"), trace.SpanContext{}, false},
		{"traceparent short version", header("traceparent", "0-"+tidHex+"-"+sidHex+"-01"), trace.SpanContext{}, false},
		{"traceparent short trace id", header("traceparent", "00-"+tidHex[2:]+"-"+sidHex+"-01"), trace.SpanContext{}, false},
		{"traceparent short span id", header("traceparent", "00-"+tidHex+"-"+sidHex[2:]+"-01"), trace.SpanContext{}, false},
		{"traceparent non-hex trace id", header("traceparent", "00-"+tidHex[:31]+"g-"+sidHex+"-01"), trace.SpanContext{}, false},
		{"traceparent zero trace id", header("traceparent", "00-"+strings.Repeat("0", 32)+"-"+sidHex+"-01"), trace.SpanContext{}, false},
		{"traceparent zero span id", header("traceparent", "00-"+tidHex+"-"+strings.Repeat("0", 16)+"-01"), trace.SpanContext{}, false},
		{"traceparent odd flags", header("traceparent", "00-"+tidHex+"-"+sidHex+"-1"), trace.SpanContext{}, false},
		{"traceparent no flags", header("traceparent", "00-"+tidHex+"-"+sidHex), trace.SpanContext{}, false},
		{"traceparent twice", header("traceparent", "00-"+tidHex+"-"+sidHex+"-01", "traceparent", "00-"+tidHex+"-"+sidHex+"-01"), trace.SpanContext{}, false},

		// B3 multi-header.
		{"b3 sampled 1", header("X-B3-TraceId", tidHex, "X-B3-SpanId", sidHex, "X-B3-Sampled", "1"), sampled, true},
		{"b3 sampled true", header("X-B3-TraceId", tidHex, "X-B3-SpanId", sidHex, "X-B3-Sampled", "true"), sampled, true},
		{"b3 sampled 0", header("X-B3-TraceId", tidHex, "X-B3-SpanId", sidHex, "X-B3-Sampled", "0"), unsampled, true},
		{"b3 no sampling decision", header("X-B3-TraceId", tidHex, "X-B3-SpanId", sidHex), unsampled, true},
		{"b3 debug flag", header("X-B3-TraceId", tidHex, "X-B3-SpanId", sidHex, "X-B3-Flags", "1"), sampled, true},
		{"b3 64-bit trace id", header("X-B3-TraceId", tidHex[16:], "X-B3-SpanId", sidHex, "X-B3-Sampled", "1"), trace.SpanContext{TraceID: tid64, SpanID: sid, TraceOptions: 1}, true},
		{"b3 short span id", header("X-B3-TraceId", tidHex, "X-B3-SpanId", "0102"), trace.SpanContext{TraceID: tid, SpanID: trace.SpanID{6: 1, 7: 2}}, true},
		{"b3 odd length", header("X-B3-TraceId", tidHex[1:], "X-B3-SpanId", sidHex), trace.SpanContext{}, false},
		{"b3 trace id too long", header("X-B3-TraceId", tidHex+"00", "X-B3-SpanId", sidHex), trace.SpanContext{}, false},
		{"b3 no span id", header("X-B3-TraceId", tidHex), trace.SpanContext{}, false},
		{"b3 zero trace id", header("X-B3-TraceId", strings.Repeat("0", 32), "X-B3-SpanId", sidHex), trace.SpanContext{}, false},

		// The B3 single header is not read (OpenCensus' b3 format does not know it).
		{"b3 single", header("b3", tidHex+"-"+sidHex+"-1"), trace.SpanContext{}, false},
		{"b3 single 64-bit", header("b3", tidHex[16:]+"-"+sidHex+"-1"), trace.SpanContext{}, false},

		// Precedence: traceparent, then B3 multi.
		{"traceparent wins over b3", header("traceparent", "00-"+tidHex+"-"+sidHex+"-01", "X-B3-TraceId", tidHex, "X-B3-SpanId", "0102030405060708"), sampled, true},
		{"invalid traceparent falls back to b3", header("traceparent", "garbage", "X-B3-TraceId", tidHex, "X-B3-SpanId", "0102030405060708", "X-B3-Sampled", "1"),
			trace.SpanContext{TraceID: tid, SpanID: otherSID, TraceOptions: 1}, true},
		{"b3 multi wins over single", header("X-B3-TraceId", tidHex, "X-B3-SpanId", sidHex, "b3", tidHex+"-0102030405060708-1"), unsampled, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := SpanContextFromHeader(tc.h)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("SpanContextFromHeader = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestSpanContextFromHeaderMatchesOpenCensus checks our parser against
// OpenCensus' own formats (what Knative 1.15 used) on the cases where both
// define a result: traceparent alone, and B3 with non-zero ids and no
// X-B3-Flags.
func TestSpanContextFromHeaderMatchesOpenCensus(t *testing.T) {
	traceparents := []string{
		"00-" + tidHex + "-" + sidHex + "-01", "00-" + tidHex + "-" + sidHex + "-00", "00-" + tidHex + "-" + sidHex + "-0102",
		"01-" + tidHex + "-" + sidHex + "-01-x", "00-" + tidHex + "-" + sidHex + "-01-x", "fe-" + tidHex + "-" + sidHex + "-01",
		"ff-" + tidHex + "-" + sidHex + "-01", "00-" + tidHex + "-" + sidHex + "-1", "00-" + tidHex + "-" + sidHex + "-",
		"00-" + tidHex + "-" + sidHex, "0x-" + tidHex + "-" + sidHex + "-01", "00--" + sidHex + "-01", "", "-", "---",
		"00-" + strings.ToUpper(tidHex) + "-" + sidHex + "-01",
	}
	for _, tp := range traceparents {
		checkAgainstOpenCensus(t, tp, "", "", "")
	}
	for _, b := range [][3]string{
		{tidHex, sidHex, "1"}, {tidHex, sidHex, "true"}, {tidHex, sidHex, "0"}, {tidHex, sidHex, ""}, {tidHex[16:], sidHex, "1"},
		{tidHex[2:], sidHex[4:], "1"}, {tidHex[1:], sidHex, "1"}, {tidHex, "", "1"}, {"", sidHex, "1"}, {tidHex + "00", sidHex, "1"},
		{tidHex, sidHex + "00", "1"}, {"zz", sidHex, "1"},
	} {
		checkAgainstOpenCensus(t, "", b[0], b[1], b[2])
	}
}

func checkAgainstOpenCensus(t *testing.T, traceparent, b3TraceID, b3SpanID, b3Sampled string) {
	t.Helper()
	req := &http.Request{Header: http.Header{}}
	for k, v := range map[string]string{"traceparent": traceparent, "X-B3-TraceId": b3TraceID, "X-B3-SpanId": b3SpanID, "X-B3-Sampled": b3Sampled} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	var want trace.SpanContext
	var wantOK bool
	if traceparent != "" {
		want, wantOK = (&tracecontext.HTTPFormat{}).SpanContextFromRequest(req)
	} else {
		want, wantOK = (&b3.HTTPFormat{}).SpanContextFromRequest(req)
		if wantOK && (want.TraceID == trace.TraceID{} || want.SpanID == trace.SpanID{}) {
			return // we reject zero ids, OpenCensus' b3 does not
		}
	}
	got, ok := SpanContextFromHeader(req.Header)
	if ok != wantOK || got.TraceID != want.TraceID || got.SpanID != want.SpanID || got.TraceOptions != want.TraceOptions {
		t.Errorf("traceparent %q, b3 %q/%q/%q: got %v %v, OpenCensus %v %v", traceparent, b3TraceID, b3SpanID, b3Sampled, got, ok, want, wantOK)
	}
}

func TestSetSpanContextHeaders(t *testing.T) {
	sc := trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 1}
	cases := []struct {
		name  string
		in    http.Header
		sc    trace.SpanContext
		want  map[string]string // "" = absent
		other map[string]string // left as they were
	}{{
		name: "sampled, onto an empty header",
		in:   http.Header{},
		sc:   sc,
		want: map[string]string{"traceparent": "00-" + tidHex + "-" + sidHex + "-01", "X-B3-TraceId": tidHex, "X-B3-SpanId": sidHex, "X-B3-Sampled": "1", "b3": ""},
	}, {
		name: "unsampled; the whole options byte is written, as OpenCensus writes it",
		in:   http.Header{},
		sc:   trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 2},
		want: map[string]string{"traceparent": "00-" + tidHex + "-" + sidHex + "-02", "X-B3-Sampled": "0"},
	}, {
		name: "replaces the incoming context, leaves the other trace headers as they came",
		in: header("traceparent", "00-11111111111111111111111111111111-2222222222222222-00", "X-B3-TraceId", "11", "X-B3-SpanId", "22",
			"X-B3-ParentSpanId", "33", "X-B3-Sampled", "0", "b3", "11-22-0", "tracestate", "k=v", "X-B3-Flags", "1"),
		sc: sc,
		want: map[string]string{"traceparent": "00-" + tidHex + "-" + sidHex + "-01", "X-B3-TraceId": tidHex, "X-B3-SpanId": sidHex,
			"X-B3-Sampled": "1"},
		other: map[string]string{"tracestate": "k=v", "X-B3-Flags": "1", "X-B3-ParentSpanId": "33", "b3": "11-22-0"},
	}, {
		name: "the context's tracestate is written",
		in:   header("tracestate", "stale=1"),
		sc:   trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 1, Tracestate: ocTracestate([]string{"congo=t61rcWkgMzE"})},
		want: map[string]string{"traceparent": "00-" + tidHex + "-" + sidHex + "-01", "tracestate": "congo=t61rcWkgMzE"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			SetSpanContextHeaders(tc.in, tc.sc)
			for k, want := range tc.want {
				if got := tc.in.Values(k); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for k, want := range tc.other {
				if got := tc.in.Get(k); got != want {
					t.Errorf("%s = %q, want it kept as %q", k, got, want)
				}
			}
			// What we write, OpenCensus reads back, and so do we.
			req := &http.Request{Header: tc.in}
			w3c, ok1 := (&tracecontext.HTTPFormat{}).SpanContextFromRequest(req)
			bb, ok2 := (&b3.HTTPFormat{}).SpanContextFromRequest(req)
			ours, ok3 := SpanContextFromHeader(tc.in)
			want := trace.SpanContext{TraceID: tc.sc.TraceID, SpanID: tc.sc.SpanID, TraceOptions: tc.sc.TraceOptions}
			bb.TraceOptions |= want.TraceOptions &^ 1 // B3 carries the sampled bit only
			w3c.Tracestate, ours.Tracestate = nil, nil
			if !ok1 || !ok2 || !ok3 || w3c != want || bb != want || ours != want {
				t.Errorf("read back: tracecontext %v %v, b3 %v %v, ours %v %v; want %v", w3c, ok1, bb, ok2, ours, ok3, want)
			}
		})
	}
}

func TestSetSpanContextHeadersAllocs(t *testing.T) {
	h := http.Header{}
	sc := trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 1}
	SetSpanContextHeaders(h, sc) // the map's buckets exist now
	if n := testing.AllocsPerRun(100, func() { SetSpanContextHeaders(h, sc) }); n > 2 {
		t.Errorf("SetSpanContextHeaders allocates %v times, want <= 2", n)
	}
	h = header("traceparent", "00-"+tidHex+"-"+sidHex+"-01")
	if n := testing.AllocsPerRun(100, func() { SpanContextFromHeader(h) }); n != 0 {
		t.Errorf("SpanContextFromHeader allocates %v times, want 0", n)
	}
}

// FuzzSpanContextFromHeader feeds arbitrary trace headers (untrusted input)
// to the parser: it must not panic, must never accept zero ids, must agree
// with OpenCensus on a lone traceparent, and what it accepts must survive a
// write and a read.
func FuzzSpanContextFromHeader(f *testing.F) {
	f.Add("00-"+tidHex+"-"+sidHex+"-01", tidHex, sidHex, "1", "", tidHex+"-"+sidHex+"-1")
	f.Add("01-"+tidHex+"-"+sidHex+"-01-00", "", "", "", "1", "")
	f.Add("garbage", tidHex[16:], sidHex, "true", "", "1")
	f.Add("", "", "", "", "", tidHex+"-"+sidHex+"-d-"+sidHex)
	f.Fuzz(func(t *testing.T, tp, b3t, b3s, b3sampled, b3flags, b3single string) {
		h := http.Header{}
		for k, v := range map[string]string{"Traceparent": tp, "X-B3-Traceid": b3t, "X-B3-Spanid": b3s, "X-B3-Sampled": b3sampled, "X-B3-Flags": b3flags, "B3": b3single} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		sc, ok := SpanContextFromHeader(h)
		if !ok {
			if sc != (trace.SpanContext{}) {
				t.Fatalf("rejected, but returned %v", sc)
			}
		} else {
			if sc.TraceID == (trace.TraceID{}) || sc.SpanID == (trace.SpanID{}) {
				t.Fatalf("accepted zero ids: %v", sc)
			}
			out := http.Header{}
			SetSpanContextHeaders(out, sc)
			back, ok := SpanContextFromHeader(out)
			if !ok || back.TraceID != sc.TraceID || back.SpanID != sc.SpanID || back.IsSampled() != sc.IsSampled() {
				t.Fatalf("round trip of %v gave %v %v", sc, back, ok)
			}
		}
		if tp != "" {
			req := &http.Request{Header: http.Header{"Traceparent": {tp}}}
			want, wantOK := (&tracecontext.HTTPFormat{}).SpanContextFromRequest(req)
			got, gotOK := SpanContextFromHeader(req.Header)
			if gotOK != wantOK || got.TraceID != want.TraceID || got.SpanID != want.SpanID || got.TraceOptions != want.TraceOptions {
				t.Fatalf("traceparent %q: got %v %v, OpenCensus %v %v", tp, got, gotOK, want, wantOK)
			}
		}
	})
}
