package observability

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opencensus.io/stats"
	"go.opencensus.io/tag"
)

// seriesKey is the attribute tuple of one series. Only the fields a point's
// instruments use are filled; the others stay zero.
type seriesKey struct {
	code    int    // 0: absent (a transport error)
	port    int    // <= 0: absent
	route   string // route tag
	method  string
	host    string
	proto   string // "1.1", "2", ...
	errType string // "": absent
	https   bool
	// overflow marks the one series per point that takes every attribute
	// set beyond maxSeriesPerLayer; it has no attributes of its own.
	overflow bool
}

// attrText is the key's value of attribute k and whether it is present.
// Values from request headers are made safe label values (tagValue).
func (k *seriesKey) attrText(a AttrKey) (string, bool) {
	if k.overflow {
		return "", false
	}
	switch a {
	case AttrStatusCode:
		return strconv.Itoa(k.code), k.code != 0
	case AttrRouteTag:
		return tagValue(k.route), true
	case AttrMethod:
		return k.method, true
	case AttrScheme:
		if k.https {
			return "https", true
		}
		return "http", true
	case AttrServerAddress:
		return tagValue(k.host), true
	case AttrServerPort:
		return strconv.Itoa(k.port), k.port > 0
	case AttrProtoName:
		return "http", k.proto != ""
	case AttrProtoVersion:
		return k.proto, k.proto != ""
	case AttrErrorType:
		return k.errType, k.errType != ""
	}
	return "", false
}

// observation is what one request contributes at a point.
type observation struct {
	seconds           float64
	reqSize, respSize int64
}

// pointSet is the instruments of one point and the series of their shared
// attribute set.
//
// OpenCensus encodes the values of every tag key of a view for every value
// it aggregates. So the views have a single tag key, seriesTagKey, whose
// value is a series number; the attributes of each number are kept here and
// put back when the data is read (labels, metricdata). Lookups read an
// immutable map through an atomic pointer (no lock); a new attribute set
// copies the map. Several attributes come from request headers, so the
// number of sets is capped at maxSeriesPerLayer: beyond it, values go to one
// overflow series per point, as the OpenTelemetry SDK's cardinality limit
// does (its attribute is otel.metric.overflow=true).
type pointSet struct {
	measures []*stats.Float64Measure // one per instrument, in order
	insts    []*Instrument
	attrs    []Attr
	used     uint32 // bit AttrKey: the attribute is used

	m        atomic.Pointer[map[seriesKey]*series]
	byNumber atomic.Pointer[[]*series] // index: series number
	overflow *series
	mu       sync.Mutex // serialises inserts
}

// seriesTagKey is the one tag key of every request-metric view.
var seriesTagKey = tag.MustNewKey("series")

func newPointSet(insts []*Instrument) *pointSet {
	ps := &pointSet{insts: insts, attrs: insts[0].Attrs}
	for _, in := range insts {
		ps.measures = append(ps.measures, stats.Float64("queue-proxy/"+in.Name, in.Description, in.Unit))
	}
	for _, a := range ps.attrs {
		ps.used |= 1 << a.Key
	}
	empty := map[seriesKey]*series{}
	ps.m.Store(&empty)
	ps.overflow = ps.newSeriesLocked(seriesKey{overflow: true})
	return ps
}

// uses reports whether the point's attributes include a.
func (ps *pointSet) uses(a AttrKey) bool { return ps.used&(1<<a) != 0 }

// measuresQuantity reports whether an instrument of the point records q.
func (ps *pointSet) measuresQuantity(q Quantity) bool {
	for _, in := range ps.insts {
		if in.Quantity == q {
			return true
		}
	}
	return false
}

func (ps *pointSet) get(k seriesKey) *series {
	if s := (*ps.m.Load())[k]; s != nil {
		return s
	}
	return ps.insert(k)
}

func (ps *pointSet) insert(k seriesKey) *series {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	cur := *ps.m.Load()
	if s := cur[k]; s != nil {
		return s
	}
	if len(cur) >= maxSeriesPerLayer {
		return ps.overflow
	}
	s := ps.newSeriesLocked(k)
	next := make(map[seriesKey]*series, len(cur)+1)
	for key, v := range cur {
		next[key] = v
	}
	next[k] = s
	ps.m.Store(&next)
	return s
}

// newSeriesLocked numbers a new series; ps.mu is held (or ps is new).
func (ps *pointSet) newSeriesLocked(k seriesKey) *series {
	var all []*series
	if p := ps.byNumber.Load(); p != nil {
		all = *p
	}
	s := &series{key: k, ps: ps}
	ctx, err := tag.New(context.Background(), tag.Upsert(seriesTagKey, strconv.Itoa(len(all))))
	if err != nil { // unreachable: a number is a valid tag value
		panic(err)
	}
	s.tags = tag.FromContext(ctx)
	next := append(all[:len(all):len(all)], s)
	ps.byNumber.Store(&next)
	return s
}

// seriesOf is the series of a view row, by its series tag; nil if unknown.
func (ps *pointSet) seriesOf(tags []tag.Tag) *series {
	for _, t := range tags {
		if t.Key != seriesTagKey {
			continue
		}
		n, err := strconv.Atoi(t.Value)
		all := *ps.byNumber.Load()
		if err != nil || n < 0 || n >= len(all) {
			return nil
		}
		return all[n]
	}
	return nil
}

// labelValue is the text of the attribute named name in s ("" if absent).
func (s *series) labelValue(name string) string {
	for _, a := range s.ps.attrs {
		if a.Name == name {
			v, _ := s.key.attrText(a.Key)
			return v
		}
	}
	return ""
}

func (ps *pointSet) flush(m *Metrics) {
	for _, s := range *ps.byNumber.Load() {
		s.flush(m)
	}
}

// values appends the instruments' values of one observation.
func (ps *pointSet) values(dst []float64, o observation) []float64 {
	for _, in := range ps.insts {
		var v float64
		switch in.Quantity {
		case Duration:
			v = o.seconds
		case RequestBodySize:
			v = float64(o.reqSize)
		case ResponseBodySize:
			v = float64(o.respSize)
		}
		dst = append(dst, v*in.scale())
	}
	return dst
}

// series is one attribute set of a point and its pending batch: the values
// of every instrument of the point, one observation after another.
type series struct {
	key  seriesKey
	tags *tag.Map // the series number
	ps   *pointSet

	mu   sync.Mutex
	vals []float64 // reused; its values are copied into Measurements
}

// add records one observation: appended to the batch, which goes to the
// meter when full. The send happens under mu, so a flush that follows sees
// it.
func (s *series) add(m *Metrics, o observation) {
	s.mu.Lock()
	if s.vals == nil {
		s.vals = make([]float64, 0, batchSize*len(s.ps.insts))
	}
	s.vals = s.ps.values(s.vals, o)
	if len(s.vals) >= batchSize*len(s.ps.insts) {
		s.sendLocked(m)
	}
	s.mu.Unlock()
}

func (s *series) flush(m *Metrics) {
	s.mu.Lock()
	if len(s.vals) > 0 {
		s.sendLocked(m)
	}
	s.mu.Unlock()
}

func (s *series) sendLocked(m *Metrics) {
	ms := s.measurements(s.vals)
	s.vals = s.vals[:0]
	m.record(s.tags, ms)
}

// measurements pairs each value with its instrument's measure.
func (s *series) measurements(vals []float64) []stats.Measurement {
	n := len(s.ps.measures)
	ms := make([]stats.Measurement, len(vals))
	for i, v := range vals {
		ms[i] = s.ps.measures[i%n].M(v)
	}
	return ms
}
