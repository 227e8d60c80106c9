package observability

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"go.opencensus.io/stats/view"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// Collect returns the current values of every instrument as metricdata,
// the newest generation's exchange format (its Prometheus writer and OTLP
// read it): pending batches are flushed and queue depth sampled first. The
// resource is MetricsConfig.Resource; scopes come in the order their first
// instrument has in the generation, then the runtime scope. Instruments
// without data are left out, as the OpenTelemetry SDK leaves them out.
// After Stop it returns the resource alone.
func (m *Metrics) Collect() *metricdata.ResourceMetrics {
	m.flush()
	rm := &metricdata.ResourceMetrics{Resource: m.resource, SchemaURL: m.resourceSchemaURL}
	now := m.now().UnixNano()
	start := m.start.UnixNano()

	scopeIndex := map[Scope]int{}
	add := func(s Scope, md metricdata.Metric) {
		i, ok := scopeIndex[s]
		if !ok {
			i = len(rm.Scopes)
			scopeIndex[s] = i
			rm.Scopes = append(rm.Scopes, metricdata.Scope{Name: s.Name, Version: s.Version, SchemaURL: s.SchemaURL})
		}
		rm.Scopes[i].Metrics = append(rm.Scopes[i].Metrics, md)
	}

	m.stopMu.RLock()
	stopped := m.stopped
	m.stopMu.RUnlock()
	if stopped {
		return rm
	}
	for i := range m.gen.Instruments {
		in := &m.gen.Instruments[i]
		rows, err := m.meter.RetrieveData(m.views[i].Name)
		if err != nil || len(rows) == 0 {
			continue
		}
		md := metricdata.Metric{Name: in.Name, Description: in.Description, Unit: in.Unit, Kind: metricdata.Histogram}
		integral := in.Quantity != Duration
		ps := m.points[in.Point]
		for _, r := range rows {
			d, ok := r.Data.(*view.DistributionData)
			s := ps.seriesOf(r.Tags)
			if !ok || d.Count == 0 || s == nil {
				continue
			}
			md.Points = append(md.Points, histogramPoint(in, &s.key, d, integral, start, now))
		}
		sortPoints(md.Points)
		add(in.Scope, md)
	}
	if m.queueDepth != nil {
		qd := m.gen.QueueDepth
		add(qd.Scope, metricdata.Metric{
			Name: qd.Name, Description: qd.Description, Unit: qd.Unit, Kind: metricdata.Gauge, IsInt: true,
			Points: []metricdata.Point{{Time: now, Value: float64(m.queueDepth())}},
		})
	}
	if m.runtime != nil {
		rm.Scopes = append(rm.Scopes, m.runtime())
	}
	return rm
}

// overflowAttr marks the series that takes the attribute sets beyond the
// cardinality cap, as the OpenTelemetry SDK marks it.
const overflowAttr = "otel.metric.overflow"

// histogramPoint converts one OpenCensus row of series k. Attributes are
// sorted by key; integer attributes are parsed back from their text.
func histogramPoint(in *Instrument, k *seriesKey, d *view.DistributionData, integral bool, start, now int64) metricdata.Point {
	p := metricdata.Point{
		Start:  start,
		Time:   now,
		Count:  uint64(d.Count),
		Sum:    d.Sum(),
		Bounds: in.Buckets,
		Counts: make([]uint64, len(in.Buckets)+1),
		Min:    d.Min, Max: d.Max, HasMinMax: true,
	}
	if p.Max == math.SmallestNonzeroFloat64 && p.Min <= 0 {
		// OpenCensus starts Max there, so values <= 0 never move it.
		p.Max = p.Min
	}
	if integral { // the mean-based sum drifts off whole numbers
		p.Sum = math.Round(p.Sum)
	}
	for i := range p.Counts {
		if i < len(d.CountPerBucket) {
			p.Counts[i] = uint64(d.CountPerBucket[i])
		}
	}
	if k.overflow {
		p.Attrs = append(p.Attrs, metricdata.String(overflowAttr, "true"))
	}
	for _, a := range in.Attrs {
		v, ok := k.attrText(a.Key)
		if !ok {
			continue
		}
		if a.Int {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				p.Attrs = append(p.Attrs, metricdata.Int(a.Name, n))
				continue
			}
		}
		p.Attrs = append(p.Attrs, metricdata.String(a.Name, v))
	}
	slices.SortFunc(p.Attrs, func(x, y metricdata.Attr) int { return strings.Compare(x.Key, y.Key) })
	return p
}

// sortPoints orders points by their attribute values, for stable output.
func sortPoints(ps []metricdata.Point) {
	slices.SortFunc(ps, func(a, b metricdata.Point) int {
		for i := 0; i < len(a.Attrs) && i < len(b.Attrs); i++ {
			if c := strings.Compare(a.Attrs[i].Key, b.Attrs[i].Key); c != 0 {
				return c
			}
			if c := strings.Compare(a.Attrs[i].Text(), b.Attrs[i].Text()); c != 0 {
				return c
			}
		}
		return len(a.Attrs) - len(b.Attrs)
	})
}
