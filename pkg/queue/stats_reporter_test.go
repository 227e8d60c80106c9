package queue

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	netstats "knative.dev/networking/pkg/http/stats"
)

// decodeStat decodes a Stat body field by field, failing on anything the
// autoscaler's decoder would not accept as Stat.
func decodeStat(t *testing.T, b []byte) (pod string, doubles map[protowire.Number]float64) {
	t.Helper()
	doubles = map[protowire.Number]float64{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == statPodName && typ == protowire.BytesType:
			s, m := protowire.ConsumeString(b)
			if m < 0 {
				t.Fatalf("bad pod_name: %v", protowire.ParseError(m))
			}
			pod, b = s, b[m:]
		case num >= 2 && num <= 6 && typ == protowire.Fixed64Type:
			v, m := protowire.ConsumeFixed64(b)
			if m < 0 {
				t.Fatalf("bad double %d: %v", num, protowire.ParseError(m))
			}
			doubles[num], b = math.Float64frombits(v), b[m:]
		default:
			t.Fatalf("unexpected field %d of wire type %d", num, typ)
		}
	}
	return pod, doubles
}

func TestProtobufStatsReporter(t *testing.T) {
	start := time.Unix(1000, 0)
	r := NewProtobufStatsReporter("pod-1", start, time.Second)

	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", "text/plain") // ignored: always protobuf
		r.ServeHTTP(rec, req)
		return rec
	}

	rec := get()
	if ct := rec.Header().Get("Content-Type"); ct != "application/protobuf" {
		t.Errorf("Content-Type = %q", ct)
	}
	pod, d := decodeStat(t, rec.Body.Bytes())
	if pod != "pod-1" || len(d) != 0 {
		t.Errorf("before the first report: pod %q fields %v; want only the pod name", pod, d)
	}

	r.Report(start.Add(18*time.Second), netstats.RequestStatsReport{
		AverageConcurrency: 0.8596, AverageProxiedConcurrency: 0.00058, RequestCount: 3, ProxiedRequestCount: 1,
	})
	pod, d = decodeStat(t, get().Body.Bytes())
	want := map[protowire.Number]float64{
		statAverageConcurrentRequests: 0.8596, statAverageProxiedConcurrency: 0.00058,
		statRequestCount: 3, statProxiedRequestCount: 1, statProcessUptime: 18,
	}
	if pod != "pod-1" {
		t.Errorf("pod = %q", pod)
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("field %d = %v, want %v", k, d[k], v)
		}
	}

	// Zero values are omitted, as proto3 does; the timestamp is never set.
	r.Report(start.Add(time.Second), netstats.RequestStatsReport{})
	if _, d = decodeStat(t, get().Body.Bytes()); len(d) != 1 || d[statProcessUptime] != 1 {
		t.Errorf("idle report fields = %v, want only process_uptime=1", d)
	}
}

// TestProtobufStatsReporterPeriod: counts are per second of the period.
func TestProtobufStatsReporterPeriod(t *testing.T) {
	start := time.Unix(0, 0)
	r := NewProtobufStatsReporter("p", start, 2*time.Second)
	r.Report(start.Add(2*time.Second), netstats.RequestStatsReport{RequestCount: 10, ProxiedRequestCount: 4})
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if _, d := decodeStat(t, rec.Body.Bytes()); d[statRequestCount] != 5 || d[statProxiedRequestCount] != 2 {
		t.Errorf("fields = %v, want request_count 5, proxied 2", d)
	}
}
