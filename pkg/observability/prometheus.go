package observability

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"go.opencensus.io/stats"
	"go.opencensus.io/stats/view"
)

// The Prometheus text exposition format, version 0.0.4, written from
// OpenCensus view rows. The Prometheus client library would do this, but it
// would also be most of the binary; this is the small part queue-proxy
// needs, checked in tests against Prometheus' own parser (expfmt) and
// `promtool check metrics`.
//
// Mapping, as the OpenCensus Prometheus exporter of Knative 1.15 does it:
//
//   - Count aggregation -> counter; Distribution -> histogram (or, for a
//     family of type counter, the distribution's count); LastValue -> gauge;
//     Sum -> counter.
//   - Labels are the family's constant labels, every tag key of the view and
//     the family's derived labels, sorted by name; a tag absent from a row is
//     the empty string.
//   - Histogram buckets are cumulative, le is the bucket's upper bound, and
//     le="+Inf" equals _count. OpenCensus puts a value equal to a bound in
//     the next bucket (bounds are exclusive); the counts are shown as
//     OpenCensus aggregated them.
//   - Families with no rows are left out; rows are sorted by label values.

// ContentTypePrometheus is the Content-Type of the text format 0.0.4.
const ContentTypePrometheus = "text/plain; version=0.0.4; charset=utf-8"

type promType string

const (
	promCounter   promType = "counter"
	promGauge     promType = "gauge"
	promHistogram promType = "histogram"
)

type promLabel struct{ name, value string }

// derivedLabel is a label computed from another label's value.
type derivedLabel struct {
	name, from string
	value      func(string) string
}

// promFamily is one metric family, fed by the rows of one view.
type promFamily struct {
	Name, Help string
	Type       promType
	View       *view.View
	Series     *pointSet      // request metrics: rows carry a series number, whose attributes are the labels
	Const      []promLabel    // the same on every sample
	Derived    []derivedLabel // computed from a constant or tag label
}

func sortFamilies(fs []*promFamily) {
	slices.SortFunc(fs, func(a, b *promFamily) int { return cmp.Compare(a.Name, b.Name) })
}

// Handler serves the exposition at GET (and HEAD) /metrics; other methods
// get 405, other paths 404. MetricsConfig.WrapPromHandler, if set, wraps
// the /metrics handler (Knative's promhttp counts its own scrapes).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	var h http.Handler = m
	if m.wrapPromHandler != nil {
		h = m.wrapPromHandler(h)
	}
	mux.Handle("GET /metrics", h)
	return mux
}

// exposition buffers are pooled: a scrape writes a few tens of KiB.
var expositionBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// ServeHTTP writes the current exposition: pending batches are flushed and
// the queue depth sampled first, so the body includes every request that
// completed before the scrape.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	bp := expositionBufs.Get().(*[]byte)
	b := m.appendExposition((*bp)[:0])
	h := w.Header()
	h.Set("Content-Type", ContentTypePrometheus)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
	*bp = b
	expositionBufs.Put(bp)
}

// appendExposition appends every family with data to b, in the
// generation's exposition style.
func (m *Metrics) appendExposition(b []byte) []byte {
	if m.gen.Exposition == ExpositionOTel {
		b = appendOTelExposition(b, m.Collect())
		if m.promExtra != nil {
			b = m.promExtra(b)
		}
		return b
	}
	m.memStatsOnce.Do(m.recordMemStats)
	m.flush()
	if m.queueDepth != nil {
		m.record(m.emptyTags, []stats.Measurement{measureQueueDepth.M(int64(m.queueDepth()))})
	}
	m.stopMu.RLock()
	defer m.stopMu.RUnlock()
	if m.stopped {
		return b
	}
	rows := make(map[string][]*view.Row, len(m.families))
	for _, f := range m.families {
		name := f.View.Name
		if _, ok := rows[name]; ok {
			continue
		}
		r, err := m.meter.RetrieveData(name)
		if err != nil { // registered in NewMetrics; cannot happen
			continue
		}
		rows[name] = r
	}
	for _, f := range m.families {
		b = appendFamily(b, f, rows[f.View.Name])
	}
	return b
}

// appendFamily appends HELP, TYPE and one sample (or, for a histogram, one
// set of _bucket/_sum/_count samples) per row. Rows whose data does not fit
// the family's type are skipped.
func appendFamily(b []byte, f *promFamily, rows []*view.Row) []byte {
	if len(rows) == 0 {
		return b
	}
	labels := familyLabels(f)
	type sample struct {
		values []string // in labels order
		data   view.AggregationData
	}
	samples := make([]sample, 0, len(rows))
	for _, r := range rows {
		samples = append(samples, sample{labelValues(labels, f, r), r.Data})
	}
	slices.SortFunc(samples, func(x, y sample) int { return slices.Compare(x.values, y.values) })

	b = append(b, "# HELP "...)
	b = append(b, f.Name...)
	b = append(b, ' ')
	b = appendEscaped(b, f.Help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, f.Name...)
	b = append(b, ' ')
	b = append(b, f.Type...)
	b = append(b, '\n')
	for _, s := range samples {
		switch f.Type {
		case promHistogram:
			d, ok := s.data.(*view.DistributionData)
			if !ok {
				continue
			}
			b = appendHistogram(b, f, labels, s.values, d)
		default:
			v, ok := scalar(f.Type, s.data)
			if !ok {
				continue
			}
			b = appendSample(b, f.Name, "", labels, s.values, "", v)
		}
	}
	return b
}

// scalar is the value of a counter or gauge sample.
func scalar(t promType, d view.AggregationData) (float64, bool) {
	switch d := d.(type) {
	case *view.CountData:
		return float64(d.Value), t == promCounter
	case *view.DistributionData:
		return float64(d.Count), t == promCounter
	case *view.SumData:
		return d.Value, t == promCounter
	case *view.LastValueData:
		return d.Value, t == promGauge
	}
	return 0, false
}

func appendHistogram(b []byte, f *promFamily, labels, values []string, d *view.DistributionData) []byte {
	bounds := f.View.Aggregation.Buckets
	var cum int64
	for i, bound := range bounds {
		if i < len(d.CountPerBucket) {
			cum += d.CountPerBucket[i]
		}
		b = appendSample(b, f.Name, "_bucket", labels, values, formatFloat(bound), float64(cum))
	}
	b = appendSample(b, f.Name, "_bucket", labels, values, "+Inf", float64(d.Count))
	b = appendSample(b, f.Name, "_sum", labels, values, "", d.Sum())
	return appendSample(b, f.Name, "_count", labels, values, "", float64(d.Count))
}

// appendSample appends `name+suffix{labels[,le="le"]} value\n`.
func appendSample(b []byte, name, suffix string, labels, values []string, le string, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labels) > 0 || le != "" {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, l...)
			b = append(b, `="`...)
			b = appendEscaped(b, values[i], true)
			b = append(b, '"')
		}
		if le != "" {
			if len(labels) > 0 {
				b = append(b, ',')
			}
			b = append(b, `le="`...)
			b = append(b, le...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

// familyLabels are the label names of f, sorted.
func familyLabels(f *promFamily) []string {
	names := make([]string, 0, len(f.Const)+len(f.View.TagKeys))
	for _, l := range f.Const {
		names = append(names, l.name)
	}
	if f.Series != nil {
		for _, a := range f.Series.attrs {
			names = append(names, a.Name)
		}
	} else {
		for _, k := range f.View.TagKeys {
			names = append(names, k.Name())
		}
	}
	for _, d := range f.Derived {
		names = append(names, d.name)
	}
	slices.Sort(names)
	return names
}

// labelValues returns the row's value of each label ("" when absent).
func labelValues(labels []string, f *promFamily, r *view.Row) []string {
	values := make([]string, len(labels))
	for i, name := range labels {
		for _, l := range f.Const {
			if l.name == name {
				values[i] = l.value
			}
		}
		if f.Series != nil {
			if s := f.Series.seriesOf(r.Tags); s != nil {
				if v := s.labelValue(name); v != "" {
					values[i] = v
				}
			}
			continue
		}
		for _, t := range r.Tags {
			if t.Key.Name() == name {
				values[i] = t.Value
			}
		}
	}
	for _, d := range f.Derived {
		from := slices.Index(labels, d.from)
		to := slices.Index(labels, d.name)
		if from >= 0 && to >= 0 {
			values[to] = d.value(values[from])
		}
	}
	return values
}

// appendEscaped escapes a HELP text (backslash, newline) or a label value
// (also the double quote).
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func formatFloat(v float64) string {
	return string(appendFloat(nil, v))
}
