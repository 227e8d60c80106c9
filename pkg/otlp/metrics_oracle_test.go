package otlp

import (
	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
)

// The oracle of the encoder's tests: the message AppendMetricsRequest must
// produce, built with the generated OTLP types from the model, field by
// field, independently of the encoder.

func wantRequest(rm *metricdata.ResourceMetrics) *collectormetrics.ExportMetricsServiceRequest {
	out := &metricsv1.ResourceMetrics{
		Resource:  &resourcev1.Resource{Attributes: wantAttrs(rm.Resource)},
		SchemaUrl: utf8Fixed(rm.SchemaURL),
	}
	for _, s := range rm.Scopes {
		sm := &metricsv1.ScopeMetrics{
			Scope:     &commonv1.InstrumentationScope{Name: utf8Fixed(s.Name), Version: utf8Fixed(s.Version)},
			SchemaUrl: utf8Fixed(s.SchemaURL),
		}
		for _, m := range s.Metrics {
			sm.Metrics = append(sm.Metrics, wantMetric(m))
		}
		out.ScopeMetrics = append(out.ScopeMetrics, sm)
	}
	return &collectormetrics.ExportMetricsServiceRequest{ResourceMetrics: []*metricsv1.ResourceMetrics{out}}
}

func wantMetric(m metricdata.Metric) *metricsv1.Metric {
	out := &metricsv1.Metric{Name: utf8Fixed(m.Name), Description: utf8Fixed(m.Description), Unit: utf8Fixed(m.Unit)}
	switch m.Kind {
	case metricdata.Gauge:
		out.Data = &metricsv1.Metric_Gauge{Gauge: &metricsv1.Gauge{DataPoints: wantNumberPoints(m)}}
	case metricdata.Sum:
		out.Data = &metricsv1.Metric_Sum{Sum: &metricsv1.Sum{
			DataPoints:             wantNumberPoints(m),
			AggregationTemporality: metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
			IsMonotonic:            m.Monotonic,
		}}
	case metricdata.Histogram:
		h := &metricsv1.Histogram{AggregationTemporality: metricsv1.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE}
		for _, p := range m.Points {
			dp := &metricsv1.HistogramDataPoint{
				Attributes:        wantAttrs(p.Attrs),
				StartTimeUnixNano: uint64(p.Start),
				TimeUnixNano:      uint64(p.Time),
				Count:             p.Count,
				Sum:               ptr(p.Sum),
				BucketCounts:      p.Counts,
				ExplicitBounds:    p.Bounds,
			}
			if p.HasMinMax {
				dp.Min, dp.Max = ptr(p.Min), ptr(p.Max)
			}
			h.DataPoints = append(h.DataPoints, dp)
		}
		out.Data = &metricsv1.Metric_Histogram{Histogram: h}
	}
	return out
}

func wantNumberPoints(m metricdata.Metric) []*metricsv1.NumberDataPoint {
	var out []*metricsv1.NumberDataPoint
	for _, p := range m.Points {
		dp := &metricsv1.NumberDataPoint{
			Attributes:        wantAttrs(p.Attrs),
			StartTimeUnixNano: uint64(p.Start),
			TimeUnixNano:      uint64(p.Time),
		}
		if m.IsInt {
			dp.Value = &metricsv1.NumberDataPoint_AsInt{AsInt: int64(p.Value)}
		} else {
			dp.Value = &metricsv1.NumberDataPoint_AsDouble{AsDouble: p.Value}
		}
		out = append(out, dp)
	}
	return out
}

func wantAttrs(attrs []metricdata.Attr) []*commonv1.KeyValue {
	var out []*commonv1.KeyValue
	for _, a := range attrs {
		kv := &commonv1.KeyValue{Key: utf8Fixed(a.Key), Value: &commonv1.AnyValue{}}
		if a.IsInt {
			kv.Value.Value = &commonv1.AnyValue_IntValue{IntValue: a.Int}
		} else {
			kv.Value.Value = &commonv1.AnyValue_StringValue{StringValue: utf8Fixed(a.Str)}
		}
		out = append(out, kv)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// utf8Fixed is s with each byte that is not part of valid UTF-8 replaced by
// U+FFFD, as converting a string to runes does.
func utf8Fixed(s string) string { return string([]rune(s)) }
