package otel

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// exportTimeout bounds the wait for an export with a given content. The
// export interval is 1 s; the rest is slack for a loaded 2-core machine.
const exportTimeout = 30 * time.Second

// TestExportMatchesContract sends traffic and probes through queue-proxy
// with OTLP request metrics configured, over each protocol, and checks what
// the Collector's receiver decoded against CONTRACT.md §5.2-§5.4 and what
// otelhttp v0.72.0 and the contrib runtime instrumentation v0.72.0 produce.
// It then sends more traffic and checks that the next export carries the
// cumulative totals from the same start.
func TestExportMatchesContract(t *testing.T) {
	for _, proto := range []string{protoGRPC, protoHTTP} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			col := startCollector(t, nil)
			started := time.Now()
			// runtime.exportInterval (the runtime instrumentation's minimum
			// interval between reads of runtime/metrics) is 1 s here so
			// that the runtime counters move between two exports.
			s := startStack(t, observabilityConfigRuntime(proto, col.endpoint(proto), time.Second, time.Second), nil)

			tl := newTally()
			s.send(tl, batch1())
			e1 := waitExport(t, col, "the first batch's counts", tl.countsMatch)
			checkExport(t, e1, s, tl, started)

			s.send(tl, batch2())
			// A later export, far enough from the first that the runtime
			// metrics were read again.
			e2 := waitExport(t, col, "both batches' counts, 2.5 s after the first", func(v view) (bool, string) {
				if ok, why := tl.countsMatch(v); !ok {
					return false, why
				}
				return exportTime(v).Sub(exportTime(flatten(e1.md))) >= 2500*time.Millisecond, "not 2.5 s after the first export yet"
			})
			checkExport(t, e2, s, tl, started)
			checkGrowth(t, e1, e2)
		})
	}
}

// waitExport polls the newest accepted export until cond holds for it.
func waitExport(t *testing.T, col *collector, what string, cond func(view) (bool, string)) export {
	t.Helper()
	var got export
	err := poll(exportTimeout, func() (bool, string) {
		e, ok := col.rec.latest()
		if !ok {
			return false, fmt.Sprintf("no export accepted (%d refused)", len(col.rec.all()))
		}
		got = e
		return cond(flatten(e.md))
	})
	if err != nil {
		t.Fatalf("waiting for an export with %s: %v", what, err)
	}
	return got
}

// exportTime is the time of the export's http.server.request.duration
// points (the collection time).
func exportTime(v view) time.Time {
	m, ok := v.metric(scopeHTTP, "http.server.request.duration")
	if !ok || m.Type() != pmetric.MetricTypeHistogram || m.Histogram().DataPoints().Len() == 0 {
		return time.Time{}
	}
	return m.Histogram().DataPoints().At(0).Timestamp().AsTime()
}

// checkExport checks one export in full.
func checkExport(t *testing.T, e export, s *stack, tl *tally, started time.Time) {
	t.Helper()
	v := flatten(e.md)
	for _, p := range v.problems {
		t.Errorf("export shape: %s", p)
	}
	checkResource(t, v.resource)
	if got, want := sortedKeys(v.scopes), []string{scopeHTTP, scopeRuntime, scopeQueue}; !slices.Equal(got, want) {
		t.Errorf("scopes = %v, want %v", got, want)
	}
	for _, sc := range []string{scopeHTTP, scopeRuntime} {
		if sm, ok := v.scopes[sc]; ok && sm.Scope().Version() != contribVersion {
			t.Errorf("scope %s version = %q, want %q", sc, sm.Scope().Version(), contribVersion)
		}
	}
	checkQueueScope(t, v, tl)
	checkHTTPScope(t, v, tl)
	checkRuntimeScope(t, v)
	checkTimes(t, e.md, started.Add(-time.Second), time.Now().Add(time.Second))
}

// checkResource: CONTRACT.md §5.2 and §1b. Our attributes win over
// OTEL_RESOURCE_ATTRIBUTES, whose other attributes are kept.
func checkResource(t *testing.T, res pcommon.Map) {
	t.Helper()
	want := map[string]string{
		"service.name":           service, // SERVING_SERVICE, as OTEL_SERVICE_NAME is unset
		"service.instance.id":    podName,
		"k8s.pod.name":           podName, // POD_NAME, not SERVING_POD
		"k8s.namespace.name":     namespace,
		"container.name":         "queue-proxy",
		"kn.service.name":        service,
		"kn.configuration.name":  configuration,
		"kn.revision.name":       revision,
		"deployment.environment": "test",
		"telemetry.sdk.language": "go",
	}
	nonEmpty := []string{"service.version", "telemetry.sdk.name", "telemetry.sdk.version"}
	for k, w := range want {
		v, ok := res.Get(k)
		switch {
		case !ok:
			t.Errorf("resource lacks %s (want %q); has %s", k, w, attrKey(res))
		case v.Type() != pcommon.ValueTypeStr || v.Str() != w:
			t.Errorf("resource %s = %s, want str:%s", k, typedValue(v), w)
		}
	}
	for _, k := range nonEmpty {
		if v, ok := res.Get(k); !ok || v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
			t.Errorf("resource %s missing or empty; has %s", k, attrKey(res))
		}
	}
	// resource.Default() (telemetry.sdk.*, service.name), the QP's own and
	// OTEL_RESOURCE_ATTRIBUTES: nothing else.
	res.Range(func(k string, _ pcommon.Value) bool {
		if _, ok := want[k]; !ok && !slices.Contains(nonEmpty, k) {
			t.Errorf("resource has unexpected attribute %s", k)
		}
		return true
	})
}

// metricSpec is the static part of what a metric must look like.
type metricSpec struct {
	scope, name, unit, desc string
	typ                     pmetric.MetricType
	bounds                  []float64 // histograms
	monotonic               bool      // sums
}

// checkSpec checks name, unit, description, type, temporality, and for
// histograms the bounds and bucket arithmetic of every data point.
func checkSpec(t *testing.T, v view, sp metricSpec) (pmetric.Metric, bool) {
	t.Helper()
	m, ok := v.metric(sp.scope, sp.name)
	if !ok {
		t.Errorf("no metric %s in scope %s (it has %v)", sp.name, sp.scope, v.metricNames(sp.scope))
		return m, false
	}
	if m.Unit() != sp.unit {
		t.Errorf("%s unit = %q, want %q", sp.name, m.Unit(), sp.unit)
	}
	if m.Description() != sp.desc {
		t.Errorf("%s description = %q, want %q", sp.name, m.Description(), sp.desc)
	}
	if m.Type() != sp.typ {
		t.Errorf("%s is a %s, want %s", sp.name, m.Type(), sp.typ)
		return m, false
	}
	switch sp.typ {
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		if h.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			t.Errorf("%s temporality = %s, want Cumulative", sp.name, h.AggregationTemporality())
		}
		for i := 0; i < h.DataPoints().Len(); i++ {
			dp := h.DataPoints().At(i)
			at := sp.name + "{" + attrKey(dp.Attributes()) + "}"
			if got := dp.ExplicitBounds().AsRaw(); !slices.Equal(got, sp.bounds) {
				t.Errorf("%s bounds = %v, want %v", at, got, sp.bounds)
			}
			bc := dp.BucketCounts().AsRaw()
			if len(bc) != len(sp.bounds)+1 {
				t.Errorf("%s has %d bucket counts for %d bounds", at, len(bc), len(sp.bounds))
			}
			var n uint64
			for _, c := range bc {
				n += c
			}
			if n != dp.Count() {
				t.Errorf("%s bucket counts %v add up to %d, count is %d", at, bc, n, dp.Count())
			}
			if !dp.HasSum() {
				t.Errorf("%s has no sum", at)
			}
			// The SDK's default histogram aggregation records min and max.
			if !dp.HasMin() || !dp.HasMax() {
				t.Errorf("%s: min/max present = %t/%t, want both (the OTel SDK records them)", at, dp.HasMin(), dp.HasMax())
			} else if dp.Count() > 0 && (dp.Min() > dp.Max() || dp.Sum() < dp.Min()*float64(dp.Count())-1e-9 || dp.Sum() > dp.Max()*float64(dp.Count())+1e-9) {
				t.Errorf("%s: min %g, max %g, sum %g, count %d are inconsistent", at, dp.Min(), dp.Max(), dp.Sum(), dp.Count())
			}
		}
	case pmetric.MetricTypeSum:
		s := m.Sum()
		if s.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			t.Errorf("%s temporality = %s, want Cumulative", sp.name, s.AggregationTemporality())
		}
		if s.IsMonotonic() != sp.monotonic {
			t.Errorf("%s monotonic = %t, want %t", sp.name, s.IsMonotonic(), sp.monotonic)
		}
	}
	return m, true
}

// checkQueueScope: kn.serving.invocation.duration and kn.serving.queue.depth
// (CONTRACT.md §5.3; CC > 0, so the gauge exists).
func checkQueueScope(t *testing.T, v view, tl *tally) {
	t.Helper()
	if got, want := v.metricNames(scopeQueue), []string{"kn.serving.invocation.duration", "kn.serving.queue.depth"}; !slices.Equal(got, want) {
		t.Errorf("scope %s metrics = %v, want %v", scopeQueue, got, want)
	}
	if m, ok := checkSpec(t, v, metricSpec{scope: scopeQueue, name: "kn.serving.invocation.duration", unit: "s",
		desc: "The duration of task execution", typ: pmetric.MetricTypeHistogram, bounds: durationBounds}); ok {
		checkDurations(t, m, tl.invocation)
	}
	if m, ok := checkSpec(t, v, metricSpec{scope: scopeQueue, name: "kn.serving.queue.depth", unit: "{request}",
		desc: "Number of current requests in the queue", typ: pmetric.MetricTypeGauge}); ok {
		dps := m.Gauge().DataPoints()
		if dps.Len() != 1 {
			t.Errorf("kn.serving.queue.depth has %d data points, want 1", dps.Len())
		}
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Attributes().Len() != 0 {
				t.Errorf("kn.serving.queue.depth has attributes %s, want none", attrKey(dp.Attributes()))
			}
			if dp.ValueType() != pmetric.NumberDataPointValueTypeInt {
				t.Errorf("kn.serving.queue.depth value type = %s, want Int", dp.ValueType())
			} else if dp.IntValue() != tl.lastDepth {
				t.Errorf("kn.serving.queue.depth = %d, want %d (the breaker's in-flight count when collected)", dp.IntValue(), tl.lastDepth)
			}
		}
	}
}

// checkDurations checks a duration histogram's series and counts against
// want, and that the durations are plausible for these quick requests.
func checkDurations(t *testing.T, m pmetric.Metric, want map[string]*series) {
	t.Helper()
	got := histPoints(m)
	if !slices.Equal(sortedKeys(got), sortedKeys(want)) {
		t.Errorf("%s series:\n got %v\nwant %v", m.Name(), sortedKeys(got), sortedKeys(want))
	}
	for k, w := range want {
		dp, ok := got[k]
		if !ok {
			continue
		}
		if dp.Count() != w.count {
			t.Errorf("%s{%s} count = %d, want %d", m.Name(), k, dp.Count(), w.count)
		}
		// Every request here takes well under 10 s and more than 0.
		if dp.Sum() <= 0 || dp.Sum() >= 10*float64(w.count) {
			t.Errorf("%s{%s} sum = %g s for %d quick requests", m.Name(), k, dp.Sum(), w.count)
		}
		if dp.HasMin() && dp.Min() <= 0 {
			t.Errorf("%s{%s} min = %g, want > 0", m.Name(), k, dp.Min())
		}
		if bc := dp.BucketCounts(); bc.Len() > 0 && bc.At(bc.Len()-1) != 0 {
			t.Errorf("%s{%s}: %d requests in the > 10 s bucket", m.Name(), k, bc.At(bc.Len()-1))
		}
	}
}

// checkSizes checks a body-size histogram exactly: series, counts, sums,
// buckets, min and max follow from the bytes each request carried.
func checkSizes(t *testing.T, m pmetric.Metric, want map[string]*series, values func(*series) []float64) {
	t.Helper()
	got := histPoints(m)
	if !slices.Equal(sortedKeys(got), sortedKeys(want)) {
		t.Errorf("%s series:\n got %v\nwant %v", m.Name(), sortedKeys(got), sortedKeys(want))
	}
	for k, w := range want {
		dp, ok := got[k]
		if !ok {
			continue
		}
		vals := values(w)
		if dp.Count() != uint64(len(vals)) {
			t.Errorf("%s{%s} count = %d, want %d", m.Name(), k, dp.Count(), len(vals))
		}
		if dp.Sum() != sum(vals) {
			t.Errorf("%s{%s} sum = %g, want %g", m.Name(), k, dp.Sum(), sum(vals))
		}
		if got, want := dp.BucketCounts().AsRaw(), expectedBuckets(sizeBounds, vals); !slices.Equal(got, want) {
			t.Errorf("%s{%s} buckets = %v, want %v", m.Name(), k, got, want)
		}
		if dp.HasMin() && dp.Min() != slices.Min(vals) {
			t.Errorf("%s{%s} min = %g, want %g", m.Name(), k, dp.Min(), slices.Min(vals))
		}
		if dp.HasMax() && dp.Max() != slices.Max(vals) {
			t.Errorf("%s{%s} max = %g, want %g", m.Name(), k, dp.Max(), slices.Max(vals))
		}
	}
}

// checkHTTPScope: the otelhttp server and transport metrics (CONTRACT.md
// §5.3; attribute rules of otelhttp v0.72.0 internal/semconv).
func checkHTTPScope(t *testing.T, v view, tl *tally) {
	t.Helper()
	want := []string{
		"http.client.request.body.size", "http.client.request.duration",
		"http.server.request.body.size", "http.server.request.duration", "http.server.response.body.size",
	}
	if got := v.metricNames(scopeHTTP); !slices.Equal(got, want) {
		t.Errorf("scope %s metrics = %v, want %v", scopeHTTP, got, want)
	}
	durations := []struct {
		name, desc string
		want       map[string]*series
	}{
		{"http.server.request.duration", "Duration of HTTP server requests.", tl.server},
		{"http.client.request.duration", "Duration of HTTP client requests.", tl.client},
	}
	for _, d := range durations {
		if m, ok := checkSpec(t, v, metricSpec{scope: scopeHTTP, name: d.name, unit: "s", desc: d.desc,
			typ: pmetric.MetricTypeHistogram, bounds: durationBounds}); ok {
			checkDurations(t, m, d.want)
		}
	}
	reqSizes := func(s *series) []float64 { return s.sizes }
	sizes := []struct {
		name, desc string
		want       map[string]*series
		values     func(*series) []float64
	}{
		{"http.server.request.body.size", "Size of HTTP server request bodies.", tl.server, reqSizes},
		{"http.server.response.body.size", "Size of HTTP server response bodies.", tl.server, func(s *series) []float64 { return s.respSizes }},
		{"http.client.request.body.size", "Size of HTTP client request bodies.", tl.client, reqSizes},
	}
	for _, sz := range sizes {
		if m, ok := checkSpec(t, v, metricSpec{scope: scopeHTTP, name: sz.name, unit: "By", desc: sz.desc,
			typ: pmetric.MetricTypeHistogram, bounds: sizeBounds}); ok {
			checkSizes(t, m, sz.want, sz.values)
		}
	}
}

// runtimeSpecs are the metrics of contrib runtime v0.72.0 Start (semconv
// v1.43.0 goconv); go.memory.limit only appears with a GOMEMLIMIT, which
// these tests do not set.
var runtimeSpecs = []metricSpec{
	{name: "go.config.gogc", unit: "%", desc: "Heap size target percentage configured by the user, otherwise 100."},
	{name: "go.goroutine.count", unit: "{goroutine}", desc: "Count of live goroutines."},
	{name: "go.memory.allocated", unit: "By", desc: "Memory allocated to the heap by the application.", monotonic: true},
	{name: "go.memory.allocations", unit: "{allocation}", desc: "Count of allocations to the heap by the application.", monotonic: true},
	{name: "go.memory.gc.goal", unit: "By", desc: "Heap size target for the end of the GC cycle."},
	{name: "go.memory.used", unit: "By", desc: "Memory used by the Go runtime."},
	{name: "go.processor.limit", unit: "{thread}", desc: "The number of OS threads that can execute user-level Go code simultaneously."},
}

// checkRuntimeScope: the Go runtime metrics, observable (up/down) counters
// reported as cumulative int sums.
func checkRuntimeScope(t *testing.T, v view) {
	t.Helper()
	var names []string
	for _, sp := range runtimeSpecs {
		names = append(names, sp.name)
	}
	if got := v.metricNames(scopeRuntime); !slices.Equal(got, names) {
		t.Errorf("scope %s metrics = %v, want %v", scopeRuntime, got, names)
	}
	for _, sp := range runtimeSpecs {
		sp.scope, sp.typ = scopeRuntime, pmetric.MetricTypeSum
		m, ok := checkSpec(t, v, sp)
		if !ok {
			continue
		}
		dps := m.Sum().DataPoints()
		wantAttrs := []string{""}
		if sp.name == "go.memory.used" {
			wantAttrs = []string{attrs(map[string]any{"go.memory.type": "other"}), attrs(map[string]any{"go.memory.type": "stack"})}
		}
		var gotAttrs []string
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			gotAttrs = append(gotAttrs, attrKey(dp.Attributes()))
			if dp.ValueType() != pmetric.NumberDataPointValueTypeInt {
				t.Errorf("%s value type = %s, want Int", sp.name, dp.ValueType())
				continue
			}
			switch {
			case sp.name == "go.config.gogc" && dp.IntValue() != 100:
				t.Errorf("go.config.gogc = %d, want 100 (GOGC unset)", dp.IntValue())
			case dp.IntValue() <= 0:
				t.Errorf("%s{%s} = %d, want > 0", sp.name, attrKey(dp.Attributes()), dp.IntValue())
			}
		}
		slices.Sort(gotAttrs)
		if !slices.Equal(gotAttrs, wantAttrs) {
			t.Errorf("%s data points have attributes %q, want %q", sp.name, gotAttrs, wantAttrs)
		}
	}
}

// checkTimes: every data point's timestamps are plausible; sums and
// histograms carry a start time no later than their time.
func checkTimes(t *testing.T, md pmetric.Metrics, notBefore, notAfter time.Time) {
	t.Helper()
	eachPoint(md, func(scope string, m pmetric.Metric, key string, start, ts pcommon.Timestamp, _ float64) {
		at := m.Name() + "{" + key + "}"
		if tt := ts.AsTime(); tt.Before(notBefore) || tt.After(notAfter) {
			t.Errorf("%s time %v outside [%v, %v]", at, tt, notBefore, notAfter)
		}
		if m.Type() == pmetric.MetricTypeGauge && start == 0 {
			return // optional for gauges
		}
		if start == 0 {
			t.Errorf("%s has no start time", at)
		} else if start > ts {
			t.Errorf("%s start %v after time %v", at, start.AsTime(), ts.AsTime())
		}
	})
}

// eachPoint calls f for every data point with its metric, attributes, start
// and time, and its value (the count for histograms).
func eachPoint(md pmetric.Metrics, f func(scope string, m pmetric.Metric, key string, start, ts pcommon.Timestamp, value float64)) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			scope := sms.At(j).Scope().Name()
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeHistogram:
					dps := m.Histogram().DataPoints()
					for l := 0; l < dps.Len(); l++ {
						dp := dps.At(l)
						f(scope, m, attrKey(dp.Attributes()), dp.StartTimestamp(), dp.Timestamp(), float64(dp.Count()))
					}
				case pmetric.MetricTypeSum, pmetric.MetricTypeGauge:
					var dps pmetric.NumberDataPointSlice
					if m.Type() == pmetric.MetricTypeSum {
						dps = m.Sum().DataPoints()
					} else {
						dps = m.Gauge().DataPoints()
					}
					for l := 0; l < dps.Len(); l++ {
						dp := dps.At(l)
						v := dp.DoubleValue()
						if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
							v = float64(dp.IntValue())
						}
						f(scope, m, attrKey(dp.Attributes()), dp.StartTimestamp(), dp.Timestamp(), v)
					}
				}
			}
		}
	}
}

// checkGrowth compares two exports of one process, e2 later: cumulative
// series keep their start time, move forward in time, and do not shrink;
// the allocation counters grow.
func checkGrowth(t *testing.T, e1, e2 export) {
	t.Helper()
	type point struct {
		start, ts pcommon.Timestamp
		value     float64
		cum       bool // cumulative monotonic: histogram count or monotonic sum
	}
	index := func(md pmetric.Metrics) map[string]point {
		out := map[string]point{}
		eachPoint(md, func(scope string, m pmetric.Metric, key string, start, ts pcommon.Timestamp, value float64) {
			cum := m.Type() == pmetric.MetricTypeHistogram || (m.Type() == pmetric.MetricTypeSum && m.Sum().IsMonotonic())
			out[scope+" "+m.Name()+"{"+key+"}"] = point{start, ts, value, cum}
		})
		return out
	}
	p1, p2 := index(e1.md), index(e2.md)
	for k, a := range p1 {
		b, ok := p2[k]
		if !ok {
			t.Errorf("%s is in an export and missing from a later one", k)
			continue
		}
		if !b.ts.AsTime().After(a.ts.AsTime()) {
			t.Errorf("%s time did not advance: %v then %v", k, a.ts.AsTime(), b.ts.AsTime())
		}
		if a.start != 0 && a.start != b.start {
			t.Errorf("%s start time changed from %v to %v (cumulative series keep theirs)", k, a.start.AsTime(), b.start.AsTime())
		}
		if a.cum && b.value < a.value {
			t.Errorf("%s went down from %g to %g", k, a.value, b.value)
		}
	}
	for _, name := range []string{"go.memory.allocations", "go.memory.allocated"} {
		k := scopeRuntime + " " + name + "{}"
		if a, b := p1[k], p2[k]; !(b.value > a.value) {
			t.Errorf("%s did not grow between exports: %g then %g", name, a.value, b.value)
		}
	}
}
