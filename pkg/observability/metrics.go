package observability

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opencensus.io/stats"
	"go.opencensus.io/stats/view"
	"go.opencensus.io/tag"
	"k8s.io/utils/clock"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// Request metrics (CONTRACT.md §5.3), in the instruments of a Generation
// (generation.go).
//
// Requests are measured at three points: outside the timeout handler
// (PointServer: 1.15 revision_request_*, newest http.server.*), inside the
// concurrency breaker around the user container (PointApp: 1.15
// revision_app_request_*, newest kn.serving.invocation.duration), and in the
// upstream transport (PointClient: newest http.client.*). Probes are not
// measured at the first two. Queue depth and the runtime families complete
// the set.
//
// The values are recorded with OpenCensus into views of a private
// view.Meter; the 1.15 Prometheus exposition (prometheus.go) and the newest
// generation's metricdata (metrics_collect.go, for its Prometheus writer and
// OTLP) are read from those views. Four choices keep a request's cost far
// below Knative's (which builds an attribute set per request and records
// each value on its own):
//
//   - Tag maps are built once per attribute set and cached (pointSet); a
//     request looks its series up in a read-only map by a small key struct.
//   - The views carry only the attributes that vary between requests. The
//     1.15 identity labels (configuration_name, ..., service_name) and the
//     newest resource are the same for the whole process, and 1.15's
//     response_code_class is a function of response_code; the writers add
//     them. OpenCensus encodes every tag key of a view for every value it
//     aggregates, so fewer keys is less work per value.
//   - Latencies are differences of monotonic clock readings (time.Since of a
//     fixed origin), which read only the monotonic clock: half the cost of
//     time.Now.
//   - A request appends its values to its series' batch; full batches, and
//     all batches before each collection and every refresh period, go to
//     OpenCensus in one Record call each. A scrape or export therefore sees
//     every request that completed before it.
//
// 1.15's revision_request_count and revision_app_request_count are the
// counts of the latency views: the same values with the same tags.
//
// Queue depth is breaker.InFlight() (admitted requests, queued plus
// running) sampled when collected (scrape or export), not at each request's
// entry as Knative does: a per-request sample costs every request and, once
// traffic stops, shows the in-flight count of the last request forever
// (never 0). In 1.15 its labels are the identity labels plus
// response_code="" and response_code_class="".

const (
	// MetricsNamespace prefixes every 1.15 metric name, as the 1.15
	// OpenCensus Prometheus exporter's "revision" component did.
	MetricsNamespace = "revision"

	// ContainerName is the container_name label.
	ContainerName = "queue-proxy"

	// unknownService is the service_name label of a revision that belongs
	// to no Knative Service (SERVING_SERVICE empty).
	unknownService = "unknown"
)

// labelResponseCodeClass is derived from response_code by the exposition.
const labelResponseCodeClass = "response_code_class"

// codeClassLabel adds response_code_class to a family.
var codeClassLabel = derivedLabel{name: labelResponseCodeClass, from: "response_code", value: codeClassOf}

var measureQueueDepth = stats.Int64("queue-proxy/queue_depth",
	"Requests admitted by the concurrency breaker, queued plus running", stats.UnitDimensionless)

const (
	// defaultMemStatsPeriod and minMemStatsPeriod bound the refresh of the
	// memory gauges.
	defaultMemStatsPeriod = 15 * time.Second
	minMemStatsPeriod     = time.Second
	// meterReportingPeriod: nothing subscribes to the meter's periodic
	// pushes, so its own ticker wakes up rarely.
	meterReportingPeriod = time.Hour
	// batchSize is how many observations a series collects before it
	// records them.
	batchSize = 64
	// maxSeriesPerLayer caps the cached attribute sets of a point.
	maxSeriesPerLayer = 1024
	// maxLabelLen bounds a label value taken from a request header.
	maxLabelLen = 255
)

// MetricsConfig is what NewMetrics needs to know about the revision.
type MetricsConfig struct {
	// Generation decides the names, units, attributes and exposition; nil
	// is Generation115.
	Generation *Generation

	// Identity labels of the 1.15 exposition (SERVING_*). An empty Service
	// becomes "unknown".
	Namespace, Service, Configuration, Revision, Pod string

	// Resource describes the process in the newest generation: target_info
	// on Prometheus, the OTLP resource (CONTRACT.md §5.2).
	Resource          []metricdata.Attr
	ResourceSchemaURL string

	// RouteTag returns the route tag of a request in the generation's
	// values (queue.RouteTagName). Nil labels every request "".
	RouteTag func(*http.Request) string

	// QueueDepth returns the breaker's in-flight count. Nil (no breaker,
	// CONTAINER_CONCURRENCY 0) means there is no queue-depth metric.
	QueueDepth func() int

	// MemStatsPeriod is how often the 1.15 revision_go_* gauges are
	// refreshed and pending batches flushed. <= 0 means 15 s; less than
	// 1 s is raised to 1 s, as runtime.ReadMemStats stops the world.
	MemStatsPeriod time.Duration

	// Runtime returns the newest generation's Go runtime scope (OTel
	// runtime instrumentation); nil leaves it out.
	Runtime func() metricdata.Scope
	// PromExtra appends the families that Knative's default Prometheus
	// registry adds on :9091 (newest exposition only); nil adds none.
	PromExtra func([]byte) []byte
	// WrapPromHandler wraps the /metrics handler (newest: promhttp's
	// scrape counters); nil wraps nothing.
	WrapPromHandler func(http.Handler) http.Handler

	// Clock drives the refresh; nil is the real clock.
	Clock clock.WithTicker
}

// Metrics records the request metrics of one queue-proxy in one
// generation's instruments and serves them in the Prometheus text format
// (and, newest, as metricdata for OTLP). Create it with NewMetrics, wrap the
// chain with RequestHandler and AppHandler and the upstream transport with
// Transport, serve Handler on the user-metrics port, and Stop it at exit.
type Metrics struct {
	gen      *Generation
	meter    view.Meter
	points   [numPoints]*pointSet
	views    []*view.View  // one per gen.Instruments entry
	families []*promFamily // 1.15 exposition order (sorted by name)

	routeTag   func(*http.Request) string
	queueDepth func() int
	emptyTags  *tag.Map
	since      func() time.Duration // monotonic time since an origin; tests replace it
	start      time.Time            // when the cumulative series started
	now        func() time.Time

	resource          []metricdata.Attr
	resourceSchemaURL string
	runtime           func() metricdata.Scope
	promExtra         func([]byte) []byte
	wrapPromHandler   func(http.Handler) http.Handler

	// stopMu guards every send to the meter: the meter's channel is closed
	// by Stop, and a send on it would panic.
	stopMu  sync.RWMutex
	stopped bool

	// memStatsOnce takes the first memory sample, at the first scrape or
	// the first refresh tick, whichever comes first; not in NewMetrics,
	// where its stop-the-world read (about 0.5 ms) would delay startup.
	memStatsOnce sync.Once

	stopOnce sync.Once
	done     chan struct{}
	finished chan struct{}
}

// NewMetrics starts a meter with the generation's views (and queue depth
// when cfg.QueueDepth is set) and, in 1.15, the memory gauges, and starts
// the periodic flush every cfg.MemStatsPeriod. The first memory sample is
// taken at the first scrape if that comes before the first period ends.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	gen := cfg.Generation
	if gen == nil {
		gen = Generation115
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	emptyCtx, err := tag.New(context.Background())
	if err != nil {
		return nil, err
	}
	m := &Metrics{
		gen:               gen,
		meter:             view.NewMeter(),
		routeTag:          cfg.RouteTag,
		queueDepth:        cfg.QueueDepth,
		emptyTags:         tag.FromContext(emptyCtx),
		since:             monotonicSince(time.Now()),
		start:             clk.Now(),
		now:               clk.Now,
		resource:          cfg.Resource,
		resourceSchemaURL: cfg.ResourceSchemaURL,
		runtime:           cfg.Runtime,
		promExtra:         cfg.PromExtra,
		wrapPromHandler:   cfg.WrapPromHandler,
		done:              make(chan struct{}),
		finished:          make(chan struct{}),
	}

	var byPoint [numPoints][]*Instrument
	for i := range gen.Instruments {
		in := &gen.Instruments[i]
		byPoint[in.Point] = append(byPoint[in.Point], in)
	}
	for p, insts := range byPoint {
		if len(insts) > 0 {
			m.points[p] = newPointSet(insts)
		}
	}
	views := make([]*view.View, 0, len(gen.Instruments)+1+len(memStats))
	for i := range gen.Instruments {
		in := &gen.Instruments[i]
		ps := m.points[in.Point]
		v := &view.View{
			Name:        in.Name,
			Description: in.Description,
			Measure:     ps.measures[slices.Index(ps.insts, in)],
			Aggregation: view.Distribution(gen.aggregationBounds(in.Buckets)...),
			TagKeys:     []tag.Key{seriesTagKey},
		}
		m.views = append(m.views, v)
		views = append(views, v)
	}
	if gen.Exposition == ExpositionOpenCensus {
		views = append(views, m.openCensusFamilies(cfg)...)
	}

	m.meter.Start()
	m.meter.SetReportingPeriod(meterReportingPeriod)
	if err := m.meter.Register(views...); err != nil {
		m.meter.Stop()
		return nil, errors.New("registering the request-metric views: " + err.Error())
	}

	period := cfg.MemStatsPeriod
	switch {
	case period <= 0:
		period = defaultMemStatsPeriod
	case period < minMemStatsPeriod:
		period = minMemStatsPeriod
	}
	go m.refresh(clk.NewTicker(period))
	return m, nil
}

// openCensusFamilies builds the 1.15 exposition's families, and returns
// the extra views they need (queue depth, memory gauges).
func (m *Metrics) openCensusFamilies(cfg MetricsConfig) []*view.View {
	service := cfg.Service
	if service == "" {
		service = unknownService
	}
	identity := []promLabel{
		{"configuration_name", cfg.Configuration},
		{"container_name", ContainerName},
		{"namespace_name", cfg.Namespace},
		{"pod_name", cfg.Pod},
		{"revision_name", cfg.Revision},
		{"service_name", service},
	}
	derived := []derivedLabel{codeClassLabel}
	for i, in := range m.gen.Instruments {
		for _, f := range in.Families {
			m.families = append(m.families, &promFamily{Name: f.Name, Help: f.Help, Type: f.Type, View: m.views[i], Series: m.points[in.Point], Const: identity, Derived: derived})
		}
	}
	var extra []*view.View
	if m.queueDepth != nil {
		qd := m.gen.QueueDepth
		v := &view.View{
			Name:        qd.Name,
			Description: qd.Description,
			Measure:     measureQueueDepth,
			Aggregation: view.LastValue(),
			TagKeys:     []tag.Key{tag.MustNewKey("response_code")},
		}
		extra = append(extra, v)
		for _, f := range qd.Families {
			m.families = append(m.families, &promFamily{Name: f.Name, Help: f.Help, Type: f.Type, View: v, Const: identity, Derived: derived})
		}
	}
	for _, ms := range memStats {
		v := &view.View{Name: ms.name, Description: ms.help, Measure: ms.measure, Aggregation: view.LastValue()}
		extra = append(extra, v)
		m.families = append(m.families, &promFamily{Name: MetricsNamespace + "_" + ms.name, Help: ms.help, Type: promGauge, View: v})
	}
	sortFamilies(m.families)
	return extra
}

// refresh samples the memory statistics (1.15) and flushes the batches on
// every tick until Stop.
func (m *Metrics) refresh(t clock.Ticker) {
	defer close(m.finished)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			if m.gen.Exposition == ExpositionOpenCensus {
				m.memStatsOnce.Do(func() {})
				m.recordMemStats()
			}
			m.flush()
		case <-m.done:
			return
		}
	}
}

// Stop ends the refresh and the meter. Requests still in flight afterwards
// are not recorded; scrapes get an empty body. Stop is idempotent.
func (m *Metrics) Stop() {
	m.stopOnce.Do(func() {
		close(m.done)
		<-m.finished
		m.stopMu.Lock()
		m.stopped = true
		m.stopMu.Unlock()
		m.meter.Stop()
	})
}

// record hands measurements to the meter unless it is stopped.
func (m *Metrics) record(tags *tag.Map, ms []stats.Measurement) {
	m.stopMu.RLock()
	if !m.stopped {
		m.meter.Record(tags, ms, nil)
	}
	m.stopMu.RUnlock()
}

// flush sends every pending batch to the meter.
func (m *Metrics) flush() {
	for _, ps := range m.points {
		if ps != nil {
			ps.flush(m)
		}
	}
}

// codeClassOf is the response_code_class of a response_code label: "2xx"
// for 200-299 and so on; "" for "" (queue depth has no code).
func codeClassOf(code string) string {
	n, err := strconv.Atoi(code)
	if err != nil {
		return ""
	}
	return strconv.Itoa(n/100) + "xx"
}

// monotonicSince returns a clock of the monotonic time elapsed since
// origin (which must carry a monotonic reading, as time.Now's does).
func monotonicSince(origin time.Time) func() time.Duration {
	return func() time.Duration { return time.Since(origin) }
}

// tagValue makes a value taken from a request header (route tag, host) a
// safe label value, as OpenCensus tag values had to be: printable ASCII, at
// most 255 bytes. Other bytes become '_', so that no scrape or export fails
// on invalid UTF-8.
func tagValue(s string) string {
	if len(s) > maxLabelLen {
		s = s[:maxLabelLen]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 || b[j] > 0x7e {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return s
}
