package observability

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opencensus.io/stats"
	"go.opencensus.io/stats/view"
	"go.opencensus.io/tag"
	"k8s.io/utils/clock"
)

// Request metrics (CONTRACT.md §5.3, the Knative 1.15 table).
//
// Every request that is not a probe is measured twice: once outside the
// timeout handler (revision_request_count, revision_request_latencies, with
// route_tag) and once inside the concurrency breaker, around the call to the
// user container (revision_app_request_count, revision_app_request_latencies).
// revision_queue_depth and the revision_go_* memory gauges complete the set.
//
// The values are recorded with OpenCensus into views of a private
// view.Meter, and the Prometheus exposition (prometheus.go) is written from
// those views. Four choices keep a request's cost far below Knative's
// (which builds a tag map per request and records each value on its own):
//
//   - Tag maps are built once per (response code, route tag) and cached
//     (seriesMap); a request looks its series up in a read-only map.
//   - The views carry only the tags that vary independently between
//     requests: response_code and, outside, route_tag. The identity labels
//     (configuration_name, container_name, namespace_name, pod_name,
//     revision_name, service_name) are the same for the whole process, and
//     response_code_class is a function of response_code; the exposition
//     adds them. OpenCensus encodes every tag key of a view for every value
//     it aggregates, so fewer keys is less work per value.
//   - Latencies are differences of monotonic clock readings (time.Since of a
//     fixed origin), which read only the monotonic clock: half the cost of
//     time.Now.
//   - A request appends its latency to its series' batch; full batches, and
//     all batches before each scrape and every memory-statistics period, go
//     to OpenCensus in one Record call each. A scrape therefore sees every
//     request that completed before it.
//
// revision_request_count and revision_app_request_count are the counts of
// the latency views: the same values with the same tags, so a separate
// Count view would only double the aggregation work. The output is the same
// as that of separate views.
//
// revision_queue_depth is breaker.InFlight() (admitted requests, queued
// plus running) sampled when Prometheus scrapes, not at each request's
// entry as Knative does: a per-request sample costs every request and, once
// traffic stops, shows the in-flight count of the last request forever
// (never 0). Its labels are the identity labels plus response_code="" and
// response_code_class="", as in 1.15.

// Names of the views; the exposition prefixes them with "revision_".
const (
	viewRequestLatencies    = "request_latencies"
	viewAppRequestLatencies = "app_request_latencies"
	viewQueueDepth          = "queue_depth"

	// MetricsNamespace prefixes every exposed metric name, as the 1.15
	// OpenCensus Prometheus exporter's "revision" component did.
	MetricsNamespace = "revision"

	// ContainerName is the container_name label.
	ContainerName = "queue-proxy"

	// unknownService is the service_name label of a revision that belongs
	// to no Knative Service (SERVING_SERVICE empty).
	unknownService = "unknown"
)

// LatencyBucketsMs are the bucket bounds, in milliseconds, of both latency
// histograms (1.15).
var LatencyBucketsMs = []float64{
	5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500,
	600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
}

// Tag keys of the views.
var (
	keyResponseCode = tag.MustNewKey("response_code")
	keyRouteTag     = tag.MustNewKey("route_tag")
)

// labelResponseCodeClass is derived from response_code by the exposition.
const labelResponseCodeClass = "response_code_class"

// codeClassLabel adds response_code_class to a family.
var codeClassLabel = derivedLabel{name: labelResponseCodeClass, from: keyResponseCode.Name(), value: codeClassOf}

// Measures. Their names are internal; the views name the metrics.
var (
	measureRequestLatency = stats.Float64("queue-proxy/request_latencies",
		"Time from receiving a request to finishing its response", stats.UnitMilliseconds)
	measureAppLatency = stats.Float64("queue-proxy/app_request_latencies",
		"Time the user container took to answer a request", stats.UnitMilliseconds)
	measureQueueDepth = stats.Int64("queue-proxy/queue_depth",
		"Requests admitted by the concurrency breaker, queued plus running", stats.UnitDimensionless)
)

// Help texts of the exposed metrics.
const (
	helpRequestCount      = "The number of requests queue-proxy received, probes excluded"
	helpRequestLatencies  = "The time in milliseconds from receiving a request to finishing its response, as queue-proxy saw it"
	helpAppRequestCount   = "The number of requests queue-proxy passed to the user container"
	helpAppRequestLatency = "The time in milliseconds the user container took to answer, measured inside the concurrency limit"
	helpQueueDepth        = "The number of requests admitted by the concurrency breaker (queued plus running) when scraped"
)

const (
	// defaultMemStatsPeriod and minMemStatsPeriod bound the refresh of the
	// memory gauges.
	defaultMemStatsPeriod = 15 * time.Second
	minMemStatsPeriod     = time.Second
	// meterReportingPeriod: nothing subscribes to the meter's periodic
	// pushes, so its own ticker wakes up rarely.
	meterReportingPeriod = time.Hour
	// batchSize is how many values a series collects before it records them.
	batchSize = 64
	// maxSeriesPerLayer caps the cached tag sets of a layer.
	maxSeriesPerLayer = 1024
	// maxTagValueLen is OpenCensus' limit on a tag value.
	maxTagValueLen = 255
)

// MetricsConfig is what NewMetrics needs to know about the revision.
type MetricsConfig struct {
	// Identity labels (SERVING_*). An empty Service becomes "unknown".
	Namespace, Service, Configuration, Revision, Pod string

	// RouteTag returns the route_tag label of a request (in queue-proxy,
	// queue.GetRouteTagNameFromRequest). Nil labels every request "".
	RouteTag func(*http.Request) string

	// QueueDepth returns the breaker's in-flight count. Nil (no breaker,
	// CONTAINER_CONCURRENCY 0) means there is no revision_queue_depth.
	QueueDepth func() int

	// MemStatsPeriod is how often the revision_go_* gauges are refreshed
	// (and pending batches flushed). <= 0 means 15 s; less than 1 s is
	// raised to 1 s, as runtime.ReadMemStats stops the world.
	MemStatsPeriod time.Duration

	// Clock drives the refresh; nil is the real clock.
	Clock clock.WithTicker
}

// Metrics records the request metrics of one queue-proxy and serves them in
// the Prometheus text format. Create it with NewMetrics, wrap the chain with
// RequestHandler and AppHandler, serve Handler on the user-metrics port, and
// Stop it at exit.
type Metrics struct {
	meter    view.Meter
	families []*promFamily // exposition order (sorted by name)

	request seriesMap // outside the timeout handler, with route_tag
	app     seriesMap // inside the breaker

	routeTag   func(*http.Request) string
	queueDepth func() int
	emptyTags  *tag.Map
	since      func() time.Duration // monotonic time since an origin; tests replace it

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

// NewMetrics starts a meter with the request-metric views (and queue depth
// when cfg.QueueDepth is set) and the memory gauges, and starts refreshing
// the memory sample every cfg.MemStatsPeriod. The first sample is taken at
// the first scrape if that comes before the first period ends.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
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

	requestView := &view.View{
		Name:        viewRequestLatencies,
		Description: helpRequestLatencies,
		Measure:     measureRequestLatency,
		Aggregation: view.Distribution(LatencyBucketsMs...),
		TagKeys:     []tag.Key{keyResponseCode, keyRouteTag},
	}
	appView := &view.View{
		Name:        viewAppRequestLatencies,
		Description: helpAppRequestLatency,
		Measure:     measureAppLatency,
		Aggregation: view.Distribution(LatencyBucketsMs...),
		TagKeys:     []tag.Key{keyResponseCode},
	}
	views := []*view.View{requestView, appView}
	families := []*promFamily{
		{Name: MetricsNamespace + "_request_count", Help: helpRequestCount, Type: promCounter, View: requestView, Const: identity, Derived: derived},
		{Name: MetricsNamespace + "_request_latencies", Help: helpRequestLatencies, Type: promHistogram, View: requestView, Const: identity, Derived: derived},
		{Name: MetricsNamespace + "_app_request_count", Help: helpAppRequestCount, Type: promCounter, View: appView, Const: identity, Derived: derived},
		{Name: MetricsNamespace + "_app_request_latencies", Help: helpAppRequestLatency, Type: promHistogram, View: appView, Const: identity, Derived: derived},
	}
	if cfg.QueueDepth != nil {
		v := &view.View{
			Name:        viewQueueDepth,
			Description: helpQueueDepth,
			Measure:     measureQueueDepth,
			Aggregation: view.LastValue(),
			TagKeys:     []tag.Key{keyResponseCode},
		}
		views = append(views, v)
		families = append(families, &promFamily{Name: MetricsNamespace + "_queue_depth", Help: helpQueueDepth, Type: promGauge, View: v, Const: identity, Derived: derived})
	}
	for _, ms := range memStats {
		v := &view.View{Name: ms.name, Description: ms.help, Measure: ms.measure, Aggregation: view.LastValue()}
		views = append(views, v)
		families = append(families, &promFamily{Name: MetricsNamespace + "_" + ms.name, Help: ms.help, Type: promGauge, View: v})
	}
	sortFamilies(families)

	emptyCtx, err := tag.New(context.Background())
	if err != nil {
		return nil, err
	}
	m := &Metrics{
		meter:      view.NewMeter(),
		families:   families,
		routeTag:   cfg.RouteTag,
		queueDepth: cfg.QueueDepth,
		emptyTags:  tag.FromContext(emptyCtx),
		since:      monotonicSince(time.Now()),
		done:       make(chan struct{}),
		finished:   make(chan struct{}),
	}
	m.request.init(measureRequestLatency, true)
	m.app.init(measureAppLatency, false)

	m.meter.Start()
	m.meter.SetReportingPeriod(meterReportingPeriod)
	if err := m.meter.Register(views...); err != nil {
		m.meter.Stop()
		return nil, errors.New("registering the request-metric views: " + err.Error())
	}

	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
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

// refresh samples the memory statistics and flushes the batches on every
// tick until Stop.
func (m *Metrics) refresh(t clock.Ticker) {
	defer close(m.finished)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			m.memStatsOnce.Do(func() {})
			m.recordMemStats()
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
	m.request.flush(m)
	m.app.flush(m)
}

// series is one tag set of a latency view and its pending batch.
type series struct {
	tags    *tag.Map
	measure *stats.Float64Measure
	cached  bool // false: over the cardinality cap, recorded one by one

	mu   sync.Mutex
	vals []float64 // reused; its values are copied into Measurements
}

// add records one value: appended to the batch, which goes to the meter
// when full. The send happens under mu, so a flush that follows sees it.
func (s *series) add(m *Metrics, v float64) {
	if !s.cached {
		m.record(s.tags, []stats.Measurement{s.measure.M(v)})
		return
	}
	s.mu.Lock()
	if s.vals == nil {
		s.vals = make([]float64, 0, batchSize)
	}
	s.vals = append(s.vals, v)
	if len(s.vals) >= batchSize {
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
	ms := make([]stats.Measurement, len(s.vals))
	for i, v := range s.vals {
		ms[i] = s.measure.M(v)
	}
	s.vals = s.vals[:0]
	m.record(s.tags, ms)
}

// seriesKey identifies a series: response code and route tag ("" for the
// app layer, which has no route_tag).
type seriesKey struct {
	code  int
	route string
}

// seriesMap caches the series of one layer. Lookups read an immutable map
// through an atomic pointer (no lock); a new tag set copies the map. At most
// maxSeriesPerLayer series are cached: route tags come from a request
// header, so their number is not bounded by queue-proxy.
type seriesMap struct {
	measure   *stats.Float64Measure
	withRoute bool

	m  atomic.Pointer[map[seriesKey]*series]
	mu sync.Mutex // serialises inserts
}

func (sm *seriesMap) init(measure *stats.Float64Measure, withRoute bool) {
	sm.measure, sm.withRoute = measure, withRoute
	empty := map[seriesKey]*series{}
	sm.m.Store(&empty)
}

func (sm *seriesMap) get(code int, route string) *series {
	if s := (*sm.m.Load())[seriesKey{code, route}]; s != nil {
		return s
	}
	return sm.insert(code, route)
}

func (sm *seriesMap) insert(code int, route string) *series {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	cur := *sm.m.Load()
	key := seriesKey{code, route}
	if s := cur[key]; s != nil {
		return s
	}
	s := &series{tags: sm.tagMap(code, route), measure: sm.measure}
	if len(cur) >= maxSeriesPerLayer {
		return s
	}
	s.cached = true
	next := make(map[seriesKey]*series, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[key] = s
	sm.m.Store(&next)
	return s
}

// tagMap builds the tags of a series. Values that OpenCensus would reject
// (non-printable ASCII, longer than 255 bytes) are made acceptable first, so
// that building the map cannot fail.
func (sm *seriesMap) tagMap(code int, route string) *tag.Map {
	mutators := []tag.Mutator{tag.Upsert(keyResponseCode, strconv.Itoa(code))}
	if sm.withRoute {
		mutators = append(mutators, tag.Upsert(keyRouteTag, tagValue(route)))
	}
	ctx, err := tag.New(context.Background(), mutators...)
	if err != nil { // unreachable: every value was made valid
		ctx, _ = tag.New(context.Background())
	}
	return tag.FromContext(ctx)
}

func (sm *seriesMap) flush(m *Metrics) {
	for _, s := range *sm.m.Load() {
		s.flush(m)
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

// tagValue makes s a valid OpenCensus tag value: printable ASCII, at most
// 255 bytes. Other bytes become '_'.
func tagValue(s string) string {
	if len(s) > maxTagValueLen {
		s = s[:maxTagValueLen]
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
