package otlp

import (
	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// The metrics encoder: a metricdata.ResourceMetrics as an OTLP
// ExportMetricsServiceRequest (opentelemetry/proto/collector/metrics/v1),
// the body of a gRPC Export call or of an HTTP POST to /v1/metrics with
// Content-Type application/x-protobuf.

// Field numbers of collector/metrics/v1 and metrics/v1.
const (
	requestResourceMetrics = 1 // ExportMetricsServiceRequest.resource_metrics

	resourceMetricsResource  = 1 // ResourceMetrics.resource
	resourceMetricsScopes    = 2 // ResourceMetrics.scope_metrics
	resourceMetricsSchemaURL = 3 // ResourceMetrics.schema_url

	scopeMetricsScope     = 1 // ScopeMetrics.scope
	scopeMetricsMetrics   = 2 // ScopeMetrics.metrics
	scopeMetricsSchemaURL = 3 // ScopeMetrics.schema_url

	metricName        = 1 // Metric.name
	metricDescription = 2 // Metric.description
	metricUnit        = 3 // Metric.unit
	metricGauge       = 5 // Metric.gauge
	metricSum         = 7 // Metric.sum
	metricHistogram   = 9 // Metric.histogram

	dataPoints      = 1 // Gauge, Sum and Histogram .data_points
	dataTemporality = 2 // Sum and Histogram .aggregation_temporality
	sumMonotonic    = 3 // Sum.is_monotonic

	temporalityCumulative = 2 // AGGREGATION_TEMPORALITY_CUMULATIVE

	pointStart = 2 // NumberDataPoint and HistogramDataPoint .start_time_unix_nano
	pointTime  = 3 // NumberDataPoint and HistogramDataPoint .time_unix_nano

	numberAsDouble   = 4 // NumberDataPoint.as_double
	numberAsInt      = 6 // NumberDataPoint.as_int
	numberAttributes = 7 // NumberDataPoint.attributes

	histogramCount      = 4  // HistogramDataPoint.count
	histogramSum        = 5  // HistogramDataPoint.sum
	histogramCounts     = 6  // HistogramDataPoint.bucket_counts
	histogramBounds     = 7  // HistogramDataPoint.explicit_bounds
	histogramAttributes = 9  // HistogramDataPoint.attributes
	histogramMin        = 11 // HistogramDataPoint.min
	histogramMax        = 12 // HistogramDataPoint.max
)

// AppendMetricsRequest appends to b an ExportMetricsServiceRequest that
// holds rm as its one ResourceMetrics, and returns the extended buffer.
// Everything given is encoded, in the order given; the caller chooses what
// to include. The request decodes to the message google.golang.org/protobuf
// would encode for the same data, and is as long:
//
//   - the resource's attributes and schema_url; each scope's name, version
//     and schema_url; each metric's name, description and unit;
//   - a Gauge, a Sum (cumulative, is_monotonic when Monotonic) or a
//     Histogram (cumulative) by Kind; a metric of any other Kind has no
//     data field;
//   - number points as as_int (the Value converted to int64) when the
//     metric IsInt, as_double otherwise;
//   - histogram points with count, sum (always present), bucket_counts and
//     explicit_bounds as given, min and max when HasMinMax;
//   - start and time as fixed64 Unix nanoseconds (a 0 Start is omitted);
//     attributes as string_value or int_value.
//
// A buffer with room for the whole request is not reallocated: encoding
// allocates nothing then.
func AppendMetricsRequest(b []byte, rm *metricdata.ResourceMetrics) []byte {
	b, mark := pbwire.BeginMessage(b, requestResourceMetrics)
	b = AppendResource(b, resourceMetricsResource, rm.Resource)
	for i := range rm.Scopes {
		b = appendScopeMetrics(b, &rm.Scopes[i])
	}
	b = appendString(b, resourceMetricsSchemaURL, rm.SchemaURL)
	return pbwire.EndMessage(b, mark)
}

func appendScopeMetrics(b []byte, s *metricdata.Scope) []byte {
	b, mark := pbwire.BeginMessage(b, resourceMetricsScopes)
	b = AppendScope(b, scopeMetricsScope, s.Name, s.Version)
	for i := range s.Metrics {
		b = appendMetric(b, &s.Metrics[i])
	}
	b = appendString(b, scopeMetricsSchemaURL, s.SchemaURL)
	return pbwire.EndMessage(b, mark)
}

func appendMetric(b []byte, m *metricdata.Metric) []byte {
	b, mark := pbwire.BeginMessage(b, scopeMetricsMetrics)
	b = appendString(b, metricName, m.Name)
	b = appendString(b, metricDescription, m.Description)
	b = appendString(b, metricUnit, m.Unit)
	switch m.Kind {
	case metricdata.Gauge:
		b = appendNumberData(b, metricGauge, m, false)
	case metricdata.Sum:
		b = appendNumberData(b, metricSum, m, true)
	case metricdata.Histogram:
		var data int
		b, data = pbwire.BeginMessage(b, metricHistogram)
		for i := range m.Points {
			b = appendHistogramPoint(b, &m.Points[i])
		}
		b = appendVarint(b, dataTemporality, temporalityCumulative)
		b = pbwire.EndMessage(b, data)
	}
	return pbwire.EndMessage(b, mark)
}

// appendNumberData appends field num holding a Gauge or, when sum, a
// cumulative Sum of m's points.
func appendNumberData(b []byte, num uint32, m *metricdata.Metric, sum bool) []byte {
	b, mark := pbwire.BeginMessage(b, num)
	for i := range m.Points {
		b = appendNumberPoint(b, &m.Points[i], m.IsInt)
	}
	if sum {
		b = appendVarint(b, dataTemporality, temporalityCumulative)
		if m.Monotonic {
			b = appendVarint(b, sumMonotonic, 1)
		}
	}
	return pbwire.EndMessage(b, mark)
}

func appendNumberPoint(b []byte, p *metricdata.Point, isInt bool) []byte {
	b, mark := pbwire.BeginMessage(b, dataPoints)
	b = appendFixed64(b, pointStart, uint64(p.Start))
	b = appendFixed64(b, pointTime, uint64(p.Time))
	if isInt {
		b = pbwire.AppendTag(b, numberAsInt, pbwire.Fixed64Type)
		b = pbwire.AppendFixed64(b, uint64(int64(p.Value)))
	} else {
		b = appendDouble(b, numberAsDouble, p.Value)
	}
	b = AppendAttrs(b, numberAttributes, p.Attrs)
	return pbwire.EndMessage(b, mark)
}

func appendHistogramPoint(b []byte, p *metricdata.Point) []byte {
	b, mark := pbwire.BeginMessage(b, dataPoints)
	b = appendFixed64(b, pointStart, uint64(p.Start))
	b = appendFixed64(b, pointTime, uint64(p.Time))
	b = appendFixed64(b, histogramCount, p.Count)
	b = appendDouble(b, histogramSum, p.Sum)
	b = pbwire.AppendPackedFixed64(b, histogramCounts, p.Counts)
	b = pbwire.AppendPackedDouble(b, histogramBounds, p.Bounds)
	b = AppendAttrs(b, histogramAttributes, p.Attrs)
	if p.HasMinMax {
		b = appendDouble(b, histogramMin, p.Min)
		b = appendDouble(b, histogramMax, p.Max)
	}
	return pbwire.EndMessage(b, mark)
}
