package otlp

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// checkRequest encodes rm after a prefix and checks that the prefix is
// kept, that the generated types decode the request to the oracle's
// message, and that it is exactly as long as protobuf's own encoding of
// it: no field written twice (which decoding would hide: the last scalar
// wins, messages merge), no padded varint. (The bytes themselves differ:
// we write oneof members in field-number order, google.golang.org/protobuf
// writes them last.) It returns the decoded request.
func checkRequest(t *testing.T, rm *metricdata.ResourceMetrics) *collectormetrics.ExportMetricsServiceRequest {
	t.Helper()
	prefix := []byte("prefix")
	out := AppendMetricsRequest(append([]byte(nil), prefix...), rm)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("the buffer's contents were overwritten: %q", out[:len(prefix)])
	}
	body := out[len(prefix):]
	got := &collectormetrics.ExportMetricsServiceRequest{}
	if err := proto.Unmarshal(body, got); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	want := wantRequest(rm)
	if !proto.Equal(got, want) {
		t.Fatalf("decoded request differs\n got: %s\nwant: %s", prototext.Format(got), prototext.Format(want))
	}
	if n := proto.Size(want); len(body) != n {
		t.Fatalf("request of %d bytes, protobuf's is %d", len(body), n)
	}
	return got
}

func TestAppendMetricsRequest(t *testing.T) {
	const t0, t1 = 1_700_000_000_000_000_000, 1_700_000_060_000_000_000
	long := strings.Repeat("long-value/", 1600) // > 16 KiB: a three-byte length
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	counts := []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	scope := func(ms ...metricdata.Metric) *metricdata.ResourceMetrics {
		return &metricdata.ResourceMetrics{
			Resource: []metricdata.Attr{metricdata.String("service.name", "qp")},
			Scopes:   []metricdata.Scope{{Name: "knative.dev/serving", Version: "1.19", SchemaURL: "https://opentelemetry.io/schemas/1.26.0", Metrics: ms}},
		}
	}
	for _, tc := range []struct {
		name string
		rm   *metricdata.ResourceMetrics
	}{
		{"empty", &metricdata.ResourceMetrics{}},
		{"resource only", &metricdata.ResourceMetrics{
			Resource:  []metricdata.Attr{metricdata.String("k8s.pod.name", "p-1"), metricdata.Int("k8s.pod.uid.int", -7), metricdata.String("", ""), metricdata.Int("zero", 0)},
			SchemaURL: "https://opentelemetry.io/schemas/1.26.0",
		}},
		{"empty scope, no version or schema", &metricdata.ResourceMetrics{Scopes: []metricdata.Scope{{}, {Name: "only-name"}}}},
		{"gauge double", scope(metricdata.Metric{Name: "g", Description: "a gauge", Unit: "1", Kind: metricdata.Gauge, Points: []metricdata.Point{
			{Attrs: []metricdata.Attr{metricdata.String("a", "b")}, Time: t1, Value: 0.25},
			{Time: t1, Value: 0}, // zero value: as_double is still written
			{Time: t1, Value: math.Copysign(0, -1)},
		}})},
		{"gauge int", scope(metricdata.Metric{Name: "g", Kind: metricdata.Gauge, IsInt: true, Points: []metricdata.Point{
			{Time: t1, Value: 42}, {Time: t1, Value: 0}, {Time: t1, Value: -3},
		}})},
		{"monotonic int sum", scope(metricdata.Metric{Name: "kn.serving.requests", Unit: "{request}", Kind: metricdata.Sum, Monotonic: true, IsInt: true, Points: []metricdata.Point{
			{Attrs: []metricdata.Attr{metricdata.Int("http.response.status_code", 200), metricdata.String("k", "v")}, Start: t0, Time: t1, Value: 1 << 53},
		}})},
		{"up-down double sum", scope(metricdata.Metric{Name: "queue.depth", Kind: metricdata.Sum, Points: []metricdata.Point{
			{Start: t0, Time: t1, Value: -1.5},
		}})},
		{"histogram with min and max", scope(metricdata.Metric{Name: "http.server.request.duration", Unit: "s", Kind: metricdata.Histogram, Points: []metricdata.Point{
			{Attrs: []metricdata.Attr{metricdata.String("m", "GET")}, Start: t0, Time: t1, Count: 66, Sum: 12.5, Bounds: bounds, Counts: counts, Min: 0.001, Max: 11, HasMinMax: true},
		}})},
		{"histogram without min and max, zero sum and count", scope(metricdata.Metric{Name: "h", Kind: metricdata.Histogram, Points: []metricdata.Point{
			{Start: t0, Time: t1, Bounds: bounds, Counts: make([]uint64, len(bounds)+1)},
			{Start: t0, Time: t1, Counts: []uint64{3}, Count: 3, Sum: 1}, // no bounds: one bucket
			{Start: t0, Time: t1, HasMinMax: true},                       // min = max = 0, present
		}})},
		{"zero points of each kind", scope(
			metricdata.Metric{Name: "g", Kind: metricdata.Gauge},
			metricdata.Metric{Name: "s", Kind: metricdata.Sum, Monotonic: true},
			metricdata.Metric{Name: "h", Kind: metricdata.Histogram},
		)},
		{"unknown kind has no data", scope(metricdata.Metric{Name: "x", Kind: 7, Points: []metricdata.Point{{Value: 1}}})},
		{"unicode", &metricdata.ResourceMetrics{
			Resource:  []metricdata.Attr{metricdata.String("ключ", "значение"), metricdata.String("emoji", "🚀✨"), metricdata.String("nul", "a\x00b")},
			SchemaURL: "https://例え.jp/schemas",
			Scopes: []metricdata.Scope{{Name: "スコープ", Version: "v1.0-β", Metrics: []metricdata.Metric{
				{Name: "durée", Description: "Größe", Unit: "µs", Kind: metricdata.Gauge, Points: []metricdata.Point{{Attrs: []metricdata.Attr{metricdata.String("é", "ü\uFFFD")}, Time: t1, Value: 1}}},
			}}},
		}},
		{"invalid UTF-8 becomes U+FFFD", &metricdata.ResourceMetrics{
			Resource:  []metricdata.Attr{metricdata.String("bad\xff", "x\xc3(y\xed\xa0\x80"), metricdata.Int("k\x80", 1)},
			SchemaURL: "\xfe",
			Scopes: []metricdata.Scope{{Name: "n\xc0", Version: "\xe2\x82", SchemaURL: "s\xff", Metrics: []metricdata.Metric{
				{Name: "m\xff\xfe", Description: "\x80", Unit: "u\xf0\x9f", Kind: metricdata.Gauge},
			}}},
		}},
		{"huge values", scope(
			metricdata.Metric{Name: "i", Kind: metricdata.Sum, IsInt: true, Points: []metricdata.Point{
				{Start: math.MaxInt64, Time: math.MaxInt64, Value: math.MinInt64},
				{Start: -1, Time: 1, Value: 1 << 62},
				{Start: 1, Time: 2, Value: -(1 << 62)},
			}},
			metricdata.Metric{Name: "d", Kind: metricdata.Gauge, Points: []metricdata.Point{
				{Time: 1, Value: math.MaxFloat64}, {Time: 1, Value: math.SmallestNonzeroFloat64},
				{Time: 1, Value: math.Inf(-1)}, {Time: 1, Value: math.NaN()},
			}},
			metricdata.Metric{Name: "h", Kind: metricdata.Histogram, Points: []metricdata.Point{
				{Start: 1, Time: math.MaxInt64, Count: math.MaxUint64, Sum: math.Inf(1), Bounds: []float64{math.Inf(-1), -1e300, 1e300},
					Counts: []uint64{math.MaxUint64, 0, 1 << 63, math.MaxUint64 - 1}, Min: -math.MaxFloat64, Max: math.NaN(), HasMinMax: true},
			}},
			metricdata.Metric{Name: "attrs", Kind: metricdata.Gauge, Points: []metricdata.Point{
				{Attrs: []metricdata.Attr{metricdata.Int("min", math.MinInt64), metricdata.Int("max", math.MaxInt64), metricdata.String("long", long)}, Value: 1},
			}},
		)},
		{"long strings at length boundaries", &metricdata.ResourceMetrics{
			Resource: []metricdata.Attr{
				metricdata.String(strings.Repeat("k", 127), strings.Repeat("v", 127)),
				metricdata.String(strings.Repeat("k", 128), strings.Repeat("v", 128)),
				metricdata.String("x", strings.Repeat("v", 16384)),
			},
			SchemaURL: long,
			Scopes:    []metricdata.Scope{{Name: long, Version: strings.Repeat("v", 200), SchemaURL: long}},
		}},
		{"several scopes", &metricdata.ResourceMetrics{Scopes: []metricdata.Scope{
			{Name: "a", Metrics: []metricdata.Metric{{Name: "a1", Kind: metricdata.Gauge, Points: []metricdata.Point{{Value: 1}}}}},
			{Name: "b", SchemaURL: "s", Metrics: []metricdata.Metric{{Name: "b1", Kind: metricdata.Sum, IsInt: true, Points: []metricdata.Point{{Value: 2}}}}},
		}}},
		{"realistic", realistic()},
	} {
		t.Run(tc.name, func(t *testing.T) { checkRequest(t, tc.rm) })
	}
}

// TestMetricsRequestFields checks chosen fields of decoded requests against
// literal values, so that an oracle mistake shared by the encoder cannot
// go unnoticed.
func TestMetricsRequestFields(t *testing.T) {
	rm := &metricdata.ResourceMetrics{
		Resource: []metricdata.Attr{metricdata.String("service.name", "svc"), metricdata.Int("n", -2)},
		Scopes: []metricdata.Scope{{Name: "sc", Version: "1", Metrics: []metricdata.Metric{
			{Name: "c", Kind: metricdata.Sum, Monotonic: true, IsInt: true, Points: []metricdata.Point{{Start: 5, Time: 6, Value: 7}}},
			{Name: "u", Kind: metricdata.Sum, Points: []metricdata.Point{{Time: 6, Value: 0.5}}},
			{Name: "h", Kind: metricdata.Histogram, Points: []metricdata.Point{
				{Count: 3, Sum: 0, Bounds: []float64{1}, Counts: []uint64{1, 2}, HasMinMax: true, Min: -1, Max: 4},
				{Count: 1, Sum: 2},
			}},
		}}},
	}
	req := checkRequest(t, rm)
	res := req.GetResourceMetrics()[0]
	if kv := res.GetResource().GetAttributes(); len(kv) != 2 || kv[0].GetKey() != "service.name" || kv[0].GetValue().GetStringValue() != "svc" || kv[1].GetValue().GetIntValue() != -2 {
		t.Errorf("resource attributes %v", kv)
	}
	sm := res.GetScopeMetrics()[0]
	if sm.GetScope().GetName() != "sc" || sm.GetScope().GetVersion() != "1" {
		t.Errorf("scope %v", sm.GetScope())
	}
	ms := sm.GetMetrics()
	c := ms[0].GetSum()
	if !c.GetIsMonotonic() || c.GetAggregationTemporality() != metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
		t.Errorf("counter: %v", c)
	}
	if v, ok := c.GetDataPoints()[0].GetValue().(*metricsv1.NumberDataPoint_AsInt); !ok || v.AsInt != 7 || c.GetDataPoints()[0].GetStartTimeUnixNano() != 5 || c.GetDataPoints()[0].GetTimeUnixNano() != 6 {
		t.Errorf("counter point %v", c.GetDataPoints()[0])
	}
	u := ms[1].GetSum()
	if u.GetIsMonotonic() || u.GetAggregationTemporality() != metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
		t.Errorf("up-down counter: %v", u)
	}
	if v, ok := u.GetDataPoints()[0].GetValue().(*metricsv1.NumberDataPoint_AsDouble); !ok || v.AsDouble != 0.5 {
		t.Errorf("up-down counter point %v", u.GetDataPoints()[0])
	}
	h := ms[2].GetHistogram()
	if h.GetAggregationTemporality() != metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
		t.Errorf("histogram temporality %v", h.GetAggregationTemporality())
	}
	p0, p1 := h.GetDataPoints()[0], h.GetDataPoints()[1]
	if p0.Sum == nil || *p0.Sum != 0 || p0.GetCount() != 3 || p0.Min == nil || *p0.Min != -1 || p0.Max == nil || *p0.Max != 4 ||
		len(p0.GetBucketCounts()) != 2 || p0.GetBucketCounts()[1] != 2 || len(p0.GetExplicitBounds()) != 1 || p0.GetExplicitBounds()[0] != 1 {
		t.Errorf("histogram point with min/max %v", p0)
	}
	if p1.Sum == nil || *p1.Sum != 2 || p1.Min != nil || p1.Max != nil || p1.BucketCounts != nil {
		t.Errorf("histogram point without min/max %v", p1)
	}
}

func TestAppendMetricsRequestNoAllocs(t *testing.T) {
	rm := realistic()
	buf := AppendMetricsRequest(nil, rm)
	allocs := testing.AllocsPerRun(50, func() {
		buf = AppendMetricsRequest(buf[:0], rm)
	})
	if allocs != 0 {
		t.Errorf("%v allocations into a buffer with room, want 0", allocs)
	}
}

// realistic is a collection as queue-proxy exports it: 12 resource
// attributes; 6 metrics of 20 points each (counters, gauges, up-down
// counters and 15-bucket histograms) with 4 attributes a point.
func realistic() *metricdata.ResourceMetrics {
	const t0, t1 = 1_700_000_000_000_000_000, 1_700_000_060_000_000_000
	res := []metricdata.Attr{
		metricdata.String("k8s.container.name", "queue-proxy"),
		metricdata.String("k8s.namespace.name", "default"),
		metricdata.String("k8s.pod.name", "hello-00001-deployment-5d9c8b7f4-x2x7k"),
		metricdata.String("k8s.pod.uid", "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"),
		metricdata.String("knative.dev/configuration", "hello"),
		metricdata.String("knative.dev/revision", "hello-00001"),
		metricdata.String("knative.dev/service", "hello"),
		metricdata.String("service.instance.id", "hello-00001-deployment-5d9c8b7f4-x2x7k"),
		metricdata.String("service.name", "queue-proxy"),
		metricdata.String("service.version", "1.19.0"),
		metricdata.String("telemetry.sdk.language", "go"),
		metricdata.String("telemetry.sdk.name", "queue-proxy"),
	}
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	points := func(hist bool) []metricdata.Point {
		ps := make([]metricdata.Point, 20)
		for i := range ps {
			p := &ps[i]
			p.Attrs = []metricdata.Attr{
				metricdata.String("http.request.method", "GET"),
				metricdata.Int("http.response.status_code", int64(200+i%5*100)),
				metricdata.String("kn.route.tag", "tag-"+strconv.Itoa(i)),
				metricdata.String("network.protocol.version", "1.1"),
			}
			p.Start, p.Time = t0, t1
			p.Value = float64(1000 + i*37)
			if hist {
				p.Bounds = bounds
				p.Counts = make([]uint64, len(bounds)+1)
				for j := range p.Counts {
					p.Counts[j] = uint64(i * j)
					p.Count += p.Counts[j]
				}
				p.Sum = float64(p.Count) * 0.123
				p.Min, p.Max, p.HasMinMax = 0.001, 9.8, true
			}
		}
		return ps
	}
	return &metricdata.ResourceMetrics{
		Resource:  res,
		SchemaURL: "https://opentelemetry.io/schemas/1.26.0",
		Scopes: []metricdata.Scope{{Name: "knative.dev/serving/pkg/queue", Version: "1.19.0", Metrics: []metricdata.Metric{
			{Name: "http.server.request.duration", Description: "Duration of HTTP server requests.", Unit: "s", Kind: metricdata.Histogram, Points: points(true)},
			{Name: "kn.serving.invocation.duration", Description: "Duration of the user container's answers.", Unit: "s", Kind: metricdata.Histogram, Points: points(true)},
			{Name: "kn.serving.requests", Description: "Requests handled.", Unit: "{request}", Kind: metricdata.Sum, Monotonic: true, IsInt: true, Points: points(false)},
			{Name: "http.server.active_requests", Description: "Requests in flight.", Unit: "{request}", Kind: metricdata.Sum, IsInt: true, Points: points(false)},
			{Name: "kn.queue.depth", Description: "Requests queued.", Unit: "{request}", Kind: metricdata.Gauge, IsInt: true, Points: points(false)},
			{Name: "kn.queue.capacity.ratio", Description: "Queue fill ratio.", Unit: "1", Kind: metricdata.Gauge, Points: points(false)},
		}}},
	}
}

func BenchmarkAppendMetricsRequest(b *testing.B) {
	rm := realistic()
	buf := AppendMetricsRequest(nil, rm)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMetricsRequest(buf[:0], rm)
	}
}

// BenchmarkProtoMarshal is, for comparison, google.golang.org/protobuf
// marshalling the same request already built as generated types (what
// OpenTelemetry's exporters do after converting their data to them).
func BenchmarkProtoMarshal(b *testing.B) {
	req := wantRequest(realistic())
	buf, _ := proto.Marshal(req)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], req); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAppendMetricsRequest builds a ResourceMetrics from the input (any
// shape, any strings, any values), encodes it, and checks that the
// generated types decode it to the oracle's message (see checkRequest).
func FuzzAppendMetricsRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 3, 'k', 'e', 'y', 1, 7, 1, 1, 1, 'n', 0, 0, 2, 3, 2, 1, 1, 'a', 1, 'b', 5, 6, 7, 8, 9})
	f.Add([]byte{0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 3, 0, 255, 255, 255, 255, 255, 255, 255, 255, 127, 4, 3, 1})
	f.Add([]byte("\x01\x04\xff\xfe\xc3(\x00\x02\x02\x05sc\xed\xa0\x80\x01v\x00\x03\x02m\x00\x00\x02\x03\x01\x00\x05\x04"))
	f.Add([]byte{1, 250, 'x', 0, 1, 3, 's', 201, 'y', 0, 1, 1, 'h', 0, 0, 2, 1, 2, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkRequest(t, fuzzResourceMetrics(&fuzzInput{b: in}))
	})
}

// fuzzInput reads a fuzzer's bytes; once they run out, it reads zeros.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzInput) n(max int) int { return int(in.byte()) % (max + 1) }

func (in *fuzzInput) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(in.byte())
	}
	return v
}

// str is a string of the input's bytes (any bytes, valid UTF-8 or not);
// a length byte above 200 repeats them to cross the 128 and 16384-byte
// boundaries of a length prefix.
func (in *fuzzInput) str() string {
	n := in.byte()
	if n <= 200 {
		n := min(int(n), len(in.b))
		s := string(in.b[:n])
		in.b = in.b[n:]
		return s
	}
	unit := string([]byte{in.byte(), in.byte()})
	return strings.Repeat(unit, int(n-200)*150)
}

func (in *fuzzInput) attrs() []metricdata.Attr {
	var out []metricdata.Attr
	for range in.n(4) {
		if in.byte()&1 == 1 {
			out = append(out, metricdata.Int(in.str(), int64(in.u64())))
		} else {
			out = append(out, metricdata.String(in.str(), in.str()))
		}
	}
	return out
}

func fuzzResourceMetrics(in *fuzzInput) *metricdata.ResourceMetrics {
	rm := &metricdata.ResourceMetrics{Resource: in.attrs(), SchemaURL: in.str()}
	for range in.n(3) {
		s := metricdata.Scope{Name: in.str(), Version: in.str(), SchemaURL: in.str()}
		for range in.n(4) {
			flags := in.byte()
			m := metricdata.Metric{
				Name: in.str(), Description: in.str(), Unit: in.str(),
				Kind:      metricdata.Kind(flags % 4), // 3: an unknown kind
				Monotonic: flags&4 != 0,
				IsInt:     flags&8 != 0,
			}
			for range in.n(3) {
				p := metricdata.Point{Attrs: in.attrs(), Start: int64(in.u64()), Time: int64(in.u64())}
				if m.IsInt {
					p.Value = float64(int64(in.u64()))
				} else {
					p.Value = math.Float64frombits(in.u64())
				}
				if m.Kind == metricdata.Histogram {
					p.Count, p.Sum = in.u64(), math.Float64frombits(in.u64())
					for range in.n(5) {
						p.Bounds = append(p.Bounds, math.Float64frombits(in.u64()))
					}
					for range in.n(6) {
						p.Counts = append(p.Counts, in.u64())
					}
					p.HasMinMax = in.byte()&1 == 1
					p.Min, p.Max = math.Float64frombits(in.u64()), math.Float64frombits(in.u64())
				}
				m.Points = append(m.Points, p)
			}
			s.Metrics = append(s.Metrics, m)
		}
		rm.Scopes = append(rm.Scopes, s)
	}
	return rm
}
