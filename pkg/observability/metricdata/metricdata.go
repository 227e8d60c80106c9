// Package metricdata is the neutral model of one collection of metrics:
// a resource, its instrumentation scopes and their metrics with their data
// points. The newest generation's writers read it: the OTLP encoder
// (pkg/otlp) and the OpenTelemetry-style Prometheus exposition
// (pkg/observability). It has no dependencies and no behaviour beyond small
// constructors; every temporality is cumulative.
package metricdata

import "strconv"

// Kind is the OTLP data kind of a metric.
type Kind uint8

// Kinds.
const (
	// Gauge is a sampled value (OTLP Gauge).
	Gauge Kind = iota
	// Sum is a cumulative sum (OTLP Sum, cumulative temporality): a counter
	// when Monotonic, an up-down counter otherwise.
	Sum
	// Histogram is an explicit-bucket histogram (OTLP Histogram, cumulative).
	Histogram
)

// Attr is one attribute: a string or, when IsInt, an integer.
type Attr struct {
	Key   string
	Str   string
	Int   int64
	IsInt bool
}

// String returns a string attribute.
func String(key, value string) Attr { return Attr{Key: key, Str: value} }

// Int returns an integer attribute.
func Int(key string, value int64) Attr { return Attr{Key: key, Int: value, IsInt: true} }

// Text is the attribute's value as text (how Prometheus shows it).
func (a Attr) Text() string {
	if a.IsInt {
		return strconv.FormatInt(a.Int, 10)
	}
	return a.Str
}

// Point is one data point of a metric: one attribute set.
type Point struct {
	Attrs []Attr // sorted by key
	// Start and Time are Unix nanoseconds: when the cumulative series
	// started, and when this value was collected. Gauges have no Start (0).
	Start, Time int64

	// Value of a Gauge or Sum (an integer value when the metric IsInt).
	Value float64

	// Histogram fields. Counts has len(Bounds)+1 entries: Counts[i] counts
	// the values in (Bounds[i-1], Bounds[i]], the last one those above the
	// last bound. Min and Max are valid when HasMinMax.
	Count     uint64
	Sum       float64
	Bounds    []float64
	Counts    []uint64
	Min, Max  float64
	HasMinMax bool
}

// Metric is one instrument's data.
type Metric struct {
	Name        string // OpenTelemetry name, e.g. "http.server.request.duration"
	Description string
	Unit        string // UCUM, e.g. "s", "By", "{request}"
	Kind        Kind
	Monotonic   bool // Sum only
	IsInt       bool // Gauge and Sum: the values are integers
	Points      []Point
}

// Scope is an instrumentation scope and its metrics.
type Scope struct {
	Name, Version, SchemaURL string
	Metrics                  []Metric
}

// ResourceMetrics is everything one collection produced.
type ResourceMetrics struct {
	Resource  []Attr // sorted by key
	SchemaURL string
	Scopes    []Scope
}
