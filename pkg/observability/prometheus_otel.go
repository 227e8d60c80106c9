package observability

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// The newest generation's Prometheus exposition: metricdata written as the
// OpenTelemetry Prometheus exporter (go.opentelemetry.io/otel/exporters/
// prometheus, with UnderscoreEscapingWithSuffixes, as Knative configures
// it) writes it, in the text format 0.0.4:
//
//   - The name is the OpenTelemetry name with every character outside
//     [a-zA-Z0-9_:] replaced by '_', then the unit's suffix ("s" ->
//     "_seconds", "By" -> "_bytes", "%" -> "_percent", "ms" ->
//     "_milliseconds"; annotations like "{request}" and "1" add none),
//     then "_total" for a monotonic sum.
//   - Types: histogram; monotonic sum -> counter; gauge and non-monotonic
//     sum -> gauge. HELP is the description.
//   - Labels are the attributes (names escaped the same way) plus
//     otel_scope_name, otel_scope_schema_url and otel_scope_version, sorted
//     by name; le comes last on buckets.
//   - target_info{<resource attributes>} 1, "Target metadata".
//   - Families are sorted by name; target_info and the families of
//     MetricsConfig.PromExtra (Knative's default Prometheus registry)
//     follow.

// appendOTelExposition appends rm's families and target_info to b.
func appendOTelExposition(b []byte, rm *metricdata.ResourceMetrics) []byte {
	type family struct {
		name  string
		scope *metricdata.Scope
		m     *metricdata.Metric
	}
	var fams []family
	for i := range rm.Scopes {
		s := &rm.Scopes[i]
		for j := range s.Metrics {
			m := &s.Metrics[j]
			if len(m.Points) == 0 {
				continue
			}
			fams = append(fams, family{promName(m), s, m})
		}
	}
	slices.SortStableFunc(fams, func(a, b family) int { return cmp.Compare(a.name, b.name) })

	for _, f := range fams {
		b = appendHeader(b, f.name, f.m.Description, promTypeOf(f.m))
		scopeLabels := []promLabel{
			{"otel_scope_name", f.scope.Name},
			{"otel_scope_schema_url", f.scope.SchemaURL},
			{"otel_scope_version", f.scope.Version},
		}
		for _, p := range f.m.Points {
			labels, values := pointLabels(p.Attrs, scopeLabels)
			if f.m.Kind == metricdata.Histogram {
				var cum uint64
				for i, bound := range p.Bounds {
					if i < len(p.Counts) {
						cum += p.Counts[i]
					}
					b = appendSample(b, f.name, "_bucket", labels, values, formatFloat(bound), float64(cum))
				}
				b = appendSample(b, f.name, "_bucket", labels, values, "+Inf", float64(p.Count))
				b = appendSample(b, f.name, "_sum", labels, values, "", p.Sum)
				b = appendSample(b, f.name, "_count", labels, values, "", float64(p.Count))
				continue
			}
			b = appendSample(b, f.name, "", labels, values, "", p.Value)
		}
	}

	b = appendHeader(b, "target_info", "Target metadata", promGauge)
	labels, values := pointLabels(rm.Resource, nil)
	return appendSample(b, "target_info", "", labels, values, "", 1)
}

func appendHeader(b []byte, name, help string, t promType) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendEscaped(b, help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, t...)
	return append(b, '\n')
}

// pointLabels are the escaped attribute names plus extra, sorted by name,
// and their values.
func pointLabels(attrs []metricdata.Attr, extra []promLabel) (labels, values []string) {
	all := make([]promLabel, 0, len(attrs)+len(extra))
	for _, a := range attrs {
		all = append(all, promLabel{escapeName(a.Key), a.Text()})
	}
	all = append(all, extra...)
	slices.SortStableFunc(all, func(a, b promLabel) int { return cmp.Compare(a.name, b.name) })
	labels = make([]string, len(all))
	values = make([]string, len(all))
	for i, l := range all {
		labels[i], values[i] = l.name, l.value
	}
	return labels, values
}

func promTypeOf(m *metricdata.Metric) promType {
	switch {
	case m.Kind == metricdata.Histogram:
		return promHistogram
	case m.Kind == metricdata.Sum && m.Monotonic:
		return promCounter
	}
	return promGauge
}

// promName is the exposed name of an OpenTelemetry metric.
func promName(m *metricdata.Metric) string {
	name := escapeName(m.Name)
	if s := unitSuffix(m.Unit); s != "" && !strings.HasSuffix(name, "_"+s) {
		name += "_" + s
	}
	if m.Kind == metricdata.Sum && m.Monotonic && !strings.HasSuffix(name, "_total") {
		name += "_total"
	}
	return name
}

// unitSuffix is the Prometheus suffix of a UCUM unit; "" for annotations
// ({request}), the dimensionless "1" and units without a Prometheus name.
func unitSuffix(unit string) string {
	if strings.HasPrefix(unit, "{") {
		return ""
	}
	if i := strings.IndexByte(unit, '{'); i > 0 { // "By{packet}" -> "By"
		unit = unit[:i]
	}
	switch unit {
	case "s":
		return "seconds"
	case "ms":
		return "milliseconds"
	case "us":
		return "microseconds"
	case "ns":
		return "nanoseconds"
	case "min":
		return "minutes"
	case "h":
		return "hours"
	case "d":
		return "days"
	case "By":
		return "bytes"
	case "KiBy":
		return "kibibytes"
	case "MiBy":
		return "mebibytes"
	case "%":
		return "percent"
	case "Hz":
		return "hertz"
	}
	return ""
}

// escapeName replaces every character outside [a-zA-Z0-9_:] with '_'
// (one per character, not per byte); a leading digit gets a '_' prefix.
func escapeName(s string) string {
	ok := s != "" && (s[0] < '0' || s[0] > '9')
	for i := 0; ok && i < len(s); i++ {
		ok = nameChar(s[i])
	}
	if ok {
		return s
	}
	b := make([]byte, 0, len(s)+1)
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		b = append(b, '_')
	}
	for _, r := range s {
		if r < utf8.RuneSelf && nameChar(byte(r)) {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

func nameChar(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
