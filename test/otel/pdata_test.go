package otel

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Bucket boundaries (CONTRACT.md §5.3; otelhttp v0.72.0 internal/semconv).
var (
	durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	// The OTel SDK's default, which the body-size histograms use (otelhttp
	// gives them no boundaries of their own).
	sizeBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}
)

// Instrumentation scopes.
const (
	scopeQueue   = "knative.dev/serving/pkg/queue"
	scopeHTTP    = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	scopeRuntime = "go.opentelemetry.io/contrib/instrumentation/runtime"
	// contribVersion is the version of otelhttp and of the runtime
	// instrumentation in Knative v0.51.0's build.
	contribVersion = "0.72.0"
)

// view is one export flattened for lookups.
type view struct {
	resource pcommon.Map
	scopes   map[string]pmetric.ScopeMetrics
	problems []string // structural problems found while flattening
}

// flatten checks the export's shape (one resource, each scope once, each
// metric once per scope) and indexes it.
func flatten(md pmetric.Metrics) view {
	v := view{scopes: map[string]pmetric.ScopeMetrics{}}
	rms := md.ResourceMetrics()
	if rms.Len() != 1 {
		v.problems = append(v.problems, fmt.Sprintf("%d ResourceMetrics in one export, want 1", rms.Len()))
	}
	if rms.Len() == 0 {
		v.resource = pcommon.NewMap()
		return v
	}
	rm := rms.At(0)
	v.resource = rm.Resource().Attributes()
	for i := 0; i < rm.ScopeMetrics().Len(); i++ {
		sm := rm.ScopeMetrics().At(i)
		name := sm.Scope().Name()
		if _, dup := v.scopes[name]; dup {
			v.problems = append(v.problems, fmt.Sprintf("scope %q appears twice", name))
		}
		v.scopes[name] = sm
		seen := map[string]bool{}
		for j := 0; j < sm.Metrics().Len(); j++ {
			m := sm.Metrics().At(j).Name()
			if seen[m] {
				v.problems = append(v.problems, fmt.Sprintf("metric %q appears twice in scope %q", m, name))
			}
			seen[m] = true
		}
	}
	return v
}

// metric finds a metric by scope and name.
func (v view) metric(scope, name string) (pmetric.Metric, bool) {
	sm, ok := v.scopes[scope]
	if !ok {
		return pmetric.Metric{}, false
	}
	for i := 0; i < sm.Metrics().Len(); i++ {
		if m := sm.Metrics().At(i); m.Name() == name {
			return m, true
		}
	}
	return pmetric.Metric{}, false
}

// metricNames lists the metric names of a scope, sorted.
func (v view) metricNames(scope string) []string {
	sm, ok := v.scopes[scope]
	if !ok {
		return nil
	}
	var names []string
	for i := 0; i < sm.Metrics().Len(); i++ {
		names = append(names, sm.Metrics().At(i).Name())
	}
	sort.Strings(names)
	return names
}

// attrKey renders attributes as a stable string, typed, e.g.
// `http.response.status_code=int:200,url.scheme=str:http`.
func attrKey(m pcommon.Map) string {
	var parts []string
	m.Range(func(k string, v pcommon.Value) bool {
		parts = append(parts, k+"="+typedValue(v))
		return true
	})
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func typedValue(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return "str:" + v.Str()
	case pcommon.ValueTypeInt:
		return fmt.Sprintf("int:%d", v.Int())
	case pcommon.ValueTypeBool:
		return fmt.Sprintf("bool:%t", v.Bool())
	case pcommon.ValueTypeDouble:
		return fmt.Sprintf("double:%g", v.Double())
	default:
		return v.Type().String() + ":" + v.AsString()
	}
}

// attrs builds the typed key the way attrKey renders it: values are string
// or int.
func attrs(kv map[string]any) string {
	m := pcommon.NewMap()
	for k, v := range kv {
		switch x := v.(type) {
		case string:
			m.PutStr(k, x)
		case int:
			m.PutInt(k, int64(x))
		default:
			panic(fmt.Sprintf("attrs: %T", v))
		}
	}
	return attrKey(m)
}

// histPoints indexes a histogram's data points by attrKey.
func histPoints(m pmetric.Metric) map[string]pmetric.HistogramDataPoint {
	out := map[string]pmetric.HistogramDataPoint{}
	dps := m.Histogram().DataPoints()
	for i := 0; i < dps.Len(); i++ {
		out[attrKey(dps.At(i).Attributes())] = dps.At(i)
	}
	return out
}

// sortedKeys is for messages.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// bucketOf is the index of the explicit-bounds bucket that holds v: bucket
// i counts values in (bounds[i-1], bounds[i]].
func bucketOf(bounds []float64, v float64) int {
	for i, b := range bounds {
		if v <= b {
			return i
		}
	}
	return len(bounds)
}
