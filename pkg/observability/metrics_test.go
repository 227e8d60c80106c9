package observability

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opencensus.io/stats/view"
	"go.uber.org/goleak"
	clocktest "k8s.io/utils/clock/testing"
	netheader "knative.dev/networking/pkg/http/header"
)

// verifyNoLeaks fails the test if it leaves goroutines behind. The check
// runs after every cleanup registered later (Metrics.Stop). The goroutines
// that exist now (OpenCensus' default worker, started at import) are
// ignored.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// testIdentity is the revision the tests' metrics describe.
var testIdentity = MetricsConfig{Namespace: "default", Configuration: "hello", Revision: "hello-00001", Pod: "hello-00001-deployment-abc"}

// newTestMetrics returns metrics whose latency clock and refresh ticker are
// clk, stopped on cleanup.
func newTestMetrics(t *testing.T, clk *clocktest.FakeClock, cfg MetricsConfig) *Metrics {
	t.Helper()
	cfg.Clock = clk
	m, err := NewMetrics(cfg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	origin := clk.Now()
	m.since = func() time.Duration { return clk.Since(origin) }
	t.Cleanup(m.Stop)
	return m
}

// routeTagHeaders mimics queue.GetRouteTagNameFromRequest for these tests
// (pkg/queue is not imported here): the Knative-Serving-Tag header, or
// DEFAULT/DISABLED.
func routeTagHeaders(r *http.Request) string {
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	tag, def := first(r.Header["Knative-Serving-Tag"]), first(r.Header["Knative-Serving-Default-Route"])
	switch {
	case tag == "" && def == "":
		return "DISABLED"
	case tag == "":
		return "DEFAULT"
	}
	return tag
}

// testChain is RequestHandler -> (queue: advances the clock by X-Queue-Ms,
// or answers X-Reject itself) -> AppHandler -> app (advances the clock by
// X-App-Ms and answers X-Code). Everything runs on the caller's goroutine.
func testChain(m *Metrics, clk *clocktest.FakeClock, app http.Handler) http.Handler {
	queue := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clk.Step(msHeader(r, "X-Queue-Ms"))
		if code := r.Header.Get("X-Reject"); code != "" {
			n, _ := strconv.Atoi(code)
			w.WriteHeader(n)
			return
		}
		m.AppHandler(app).ServeHTTP(w, r)
	})
	return m.RequestHandler(queue)
}

// timedApp answers X-Code (default 200) after advancing clk by X-App-Ms.
func timedApp(clk *clocktest.FakeClock) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clk.Step(msHeader(r, "X-App-Ms"))
		if code := r.Header.Get("X-Code"); code != "" {
			n, _ := strconv.Atoi(code)
			w.WriteHeader(n)
		}
		io.WriteString(w, "ok")
	})
}

func msHeader(r *http.Request, name string) time.Duration {
	v := r.Header.Get(name)
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		panic(err)
	}
	return time.Duration(f * float64(time.Millisecond))
}

func serve(h http.Handler, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://svc.example/", nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// scrape returns the exposition and its parse by Prometheus' own parser;
// it fails the test on a parse error or a duplicate sample.
func scrape(t *testing.T, m *Metrics) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ContentTypePrometheus {
		t.Fatalf("scrape: %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	return body, parseExposition(t, body)
}

func parseExposition(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("expfmt cannot parse our exposition: %v\n%s", err, body)
	}
	for name, f := range fams {
		seen := map[string]bool{}
		for _, mt := range f.Metric {
			k := labelString(mt)
			if seen[k] {
				t.Errorf("%s: duplicate sample %s", name, k)
			}
			seen[k] = true
		}
	}
	return fams
}

func labelString(mt *dto.Metric) string {
	var parts []string
	for _, l := range mt.Label {
		parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func labelMap(mt *dto.Metric) map[string]string {
	m := map[string]string{}
	for _, l := range mt.Label {
		m[l.GetName()] = l.GetValue()
	}
	return m
}

// find returns the sample of family name whose labels include want.
func find(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
	var found *dto.Metric
	for _, mt := range f.Metric {
		got := labelMap(mt)
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if match {
			if found != nil {
				t.Fatalf("%s: more than one sample matches %v", name, want)
			}
			found = mt
		}
	}
	if found == nil {
		var have []string
		for _, mt := range f.Metric {
			have = append(have, labelString(mt))
		}
		t.Fatalf("%s: no sample with %v; have %v", name, want, have)
	}
	return found
}

// histogram is a histogram sample reduced to what the tests compare.
type histogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64 // upper bound -> cumulative count
}

func histogramOf(mt *dto.Metric) histogram {
	h := histogram{count: mt.GetHistogram().GetSampleCount(), sum: mt.GetHistogram().GetSampleSum(), buckets: map[float64]uint64{}}
	for _, b := range mt.GetHistogram().Bucket {
		h.buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return h
}

// wantBuckets is the cumulative count at each of LatencyBucketsMs for the
// given values, with OpenCensus' rule that a bound belongs to the next
// bucket (v < bound).
func wantBuckets(values ...float64) map[float64]uint64 {
	m := map[float64]uint64{}
	for _, b := range LatencyBucketsMs {
		for _, v := range values {
			if v < b {
				m[b]++
			}
		}
	}
	return m
}

func TestRequestMetricsExposition(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(1_700_000_000, 0))
	cfg := testIdentity
	cfg.RouteTag = routeTagHeaders
	m := newTestMetrics(t, clk, cfg)
	h := testChain(m, clk, timedApp(clk))

	requests := []struct {
		name   string
		header map[string]string
	}{
		{"plain", map[string]string{"X-Queue-Ms": "1", "X-App-Ms": "3"}},
		{"plain, slower than every bucket", map[string]string{"X-App-Ms": "250000"}},
		{"default route", map[string]string{"Knative-Serving-Default-Route": "true", "X-App-Ms": "12"}},
		{"tagged, 503, exactly on a bound", map[string]string{"Knative-Serving-Tag": "canary", "Knative-Serving-Default-Route": "false", "X-Queue-Ms": "49.5", "X-App-Ms": "150.5", "X-Code": "503"}},
		{"tag needing escapes", map[string]string{"Knative-Serving-Tag": `x"y\z`, "X-App-Ms": "70000", "X-Code": "404"}},
		{"answered above the app", map[string]string{"X-Queue-Ms": "7", "X-Reject": "504"}},
		{"kubelet probe", map[string]string{"User-Agent": "kube-probe/1.31", "X-App-Ms": "1"}},
		{"kubelet probe header", map[string]string{"K-Kubelet-Probe": "queue", "X-App-Ms": "1"}},
		{"network probe", map[string]string{"K-Network-Probe": "anything", "X-App-Ms": "1"}},
	}
	for _, r := range requests {
		if w := serve(h, r.header); w.Code == 0 {
			t.Fatalf("%s: no response", r.name)
		}
	}

	_, fams := scrape(t, m)
	identity := map[string]string{
		"configuration_name": "hello", "container_name": "queue-proxy", "namespace_name": "default",
		"pod_name": "hello-00001-deployment-abc", "revision_name": "hello-00001", "service_name": "unknown",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range identity {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	// Counters and histograms, per series.
	series := []struct {
		family string
		labels map[string]string
		values []float64 // latencies in ms
	}{
		{"revision_request", with("response_code", "200", "response_code_class", "2xx", "route_tag", "DISABLED"), []float64{4, 250000}},
		{"revision_request", with("response_code", "200", "response_code_class", "2xx", "route_tag", "DEFAULT"), []float64{12}},
		{"revision_request", with("response_code", "503", "response_code_class", "5xx", "route_tag", "canary"), []float64{200}},
		{"revision_request", with("response_code", "404", "response_code_class", "4xx", "route_tag", `x"y\z`), []float64{70000}},
		{"revision_request", with("response_code", "504", "response_code_class", "5xx", "route_tag", "DISABLED"), []float64{7}},
		{"revision_app_request", with("response_code", "200", "response_code_class", "2xx"), []float64{3, 250000, 12}},
		{"revision_app_request", with("response_code", "503", "response_code_class", "5xx"), []float64{150.5}},
		{"revision_app_request", with("response_code", "404", "response_code_class", "4xx"), []float64{70000}},
	}
	for _, s := range series {
		count := find(t, fams, s.family+"_count", s.labels)
		if got := labelMap(count); len(got) != len(s.labels) {
			t.Errorf("%s_count labels = %v, want exactly %v", s.family, got, s.labels)
		}
		if got := count.GetCounter().GetValue(); got != float64(len(s.values)) {
			t.Errorf("%s_count%v = %v, want %d", s.family, s.labels, got, len(s.values))
		}
		hist := histogramOf(find(t, fams, s.family+"_latencies", s.labels))
		var sum float64
		for _, v := range s.values {
			sum += v
		}
		if hist.count != uint64(len(s.values)) || math.Abs(hist.sum-sum) > 1e-6*sum {
			t.Errorf("%s_latencies%v: count %d sum %v, want %d %v", s.family, s.labels, hist.count, hist.sum, len(s.values), sum)
		}
		want := wantBuckets(s.values...)
		for _, b := range LatencyBucketsMs {
			if hist.buckets[b] != want[b] {
				t.Errorf("%s_latencies%v bucket le=%v = %d, want %d", s.family, s.labels, b, hist.buckets[b], want[b])
			}
		}
		if inf, ok := hist.buckets[math.Inf(1)]; !ok || inf != hist.count {
			t.Errorf("%s_latencies%v bucket le=+Inf = %d (present %v), want _count %d", s.family, s.labels, inf, ok, hist.count)
		}
		if len(hist.buckets) != len(LatencyBucketsMs)+1 {
			t.Errorf("%s_latencies has %d buckets, want %d and +Inf", s.family, len(hist.buckets), len(LatencyBucketsMs))
		}
	}
	// Nothing else: probes were not counted, and the 504 never reached the app.
	for family, want := range map[string]int{"revision_request_count": 5, "revision_app_request_count": 3} {
		if got := len(fams[family].Metric); got != want {
			t.Errorf("%s has %d series, want %d", family, got, want)
		}
	}
	for name, f := range map[string]dto.MetricType{
		"revision_request_count": dto.MetricType_COUNTER, "revision_request_latencies": dto.MetricType_HISTOGRAM,
		"revision_app_request_count": dto.MetricType_COUNTER, "revision_app_request_latencies": dto.MetricType_HISTOGRAM,
	} {
		if got := fams[name].GetType(); got != f {
			t.Errorf("%s type = %v, want %v", name, got, f)
		}
		if fams[name].GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
	if _, ok := fams["revision_queue_depth"]; ok {
		t.Error("revision_queue_depth without a breaker")
	}
}

// TestRequestMetricsExactBucketText checks the bucket lines themselves: le
// values as Prometheus writes them, cumulative counts, +Inf equal to
// _count, in order.
func TestRequestMetricsExactBucketText(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	m := newTestMetrics(t, clk, MetricsConfig{Pod: "p"})
	h := m.AppHandler(timedApp(clk))
	for _, ms := range []string{"0.5", "4.999", "5", "99", "100000", "100001"} {
		serve(h, map[string]string{"X-App-Ms": ms})
	}
	body, _ := scrape(t, m)
	const labels = `configuration_name="",container_name="queue-proxy",namespace_name="",pod_name="p",response_code="200",response_code_class="2xx",revision_name="",service_name="unknown"`
	var want strings.Builder
	cum := map[string]int{"5": 2, "10": 3, "20": 3, "40": 3, "60": 3, "80": 3, "100": 4}
	for _, b := range LatencyBucketsMs {
		le := strconv.FormatFloat(b, 'g', -1, 64)
		n, ok := cum[le]
		if !ok {
			n = 4 // 100000 itself belongs to +Inf: bounds are exclusive
		}
		want.WriteString("revision_app_request_latencies_bucket{" + labels + `,le="` + le + `"} ` + strconv.Itoa(n) + "\n")
	}
	want.WriteString("revision_app_request_latencies_bucket{" + labels + `,le="+Inf"} 6` + "\n")
	if !strings.Contains(body, want.String()) {
		t.Errorf("bucket lines missing; want\n%s\ngot\n%s", want.String(), body)
	}
	if !strings.Contains(body, "revision_app_request_latencies_count{"+labels+"} 6\n") ||
		!strings.Contains(body, "revision_app_request_count{"+labels+"} 6\n") {
		t.Errorf("_count / counter lines missing:\n%s", body)
	}
	for _, line := range []string{
		"# HELP revision_app_request_count " + helpAppRequestCount + "\n# TYPE revision_app_request_count counter\n",
		"# TYPE revision_app_request_latencies histogram\n",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("missing %q", line)
		}
	}
}

func TestRequestMetricsQueueDepth(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	var depth int
	cfg := testIdentity
	cfg.Service = "hello"
	cfg.QueueDepth = func() int { return depth }
	m := newTestMetrics(t, clk, cfg)
	for _, d := range []int{0, 7, 3} {
		depth = d
		_, fams := scrape(t, m)
		got := find(t, fams, "revision_queue_depth", map[string]string{"service_name": "hello"})
		if got.GetGauge().GetValue() != float64(d) {
			t.Errorf("queue depth = %v, want %d", got.GetGauge().GetValue(), d)
		}
		labels := labelMap(got)
		if v, ok := labels["response_code"]; !ok || v != "" {
			t.Errorf("queue depth labels %v: want response_code=\"\"", labels)
		}
		if _, ok := labels["route_tag"]; ok || len(labels) != 8 {
			t.Errorf("queue depth labels %v: want the 6 identity labels and the 2 empty code labels", labels)
		}
	}
}

func TestRequestMetricsPanic(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	m := newTestMetrics(t, clk, testIdentity)
	h := m.RequestHandler(m.AppHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK) // the response had started
		clk.Step(2 * time.Millisecond)
		panic(http.ErrAbortHandler)
	})))
	func() {
		defer func() {
			if r := recover(); r != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler to go on up", r)
			}
		}()
		serve(h, nil)
	}()
	_, fams := scrape(t, m)
	for _, name := range []string{"revision_request_count", "revision_app_request_count"} {
		if got := find(t, fams, name, map[string]string{"response_code": "500", "response_code_class": "5xx"}).GetCounter().GetValue(); got != 1 {
			t.Errorf("%s{500} = %v, want 1", name, got)
		}
	}
}

// TestRequestMetricsBatches drives more requests than a batch holds, from
// many goroutines, with scrapes in between: every request is counted once.
func TestRequestMetricsBatches(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	m := newTestMetrics(t, clk, testIdentity)
	h := testChain(m, clk, timedApp(clk))
	const workers, each = 8, 3*batchSize + 5
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Go(func() {
			for j := 0; j < each; j++ {
				serve(h, map[string]string{"X-App-Ms": "1"})
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 20; i++ {
			scrape(t, m)
		}
	})
	wg.Wait()
	_, fams := scrape(t, m)
	for _, name := range []string{"revision_request_count", "revision_app_request_count"} {
		if got := find(t, fams, name, map[string]string{"response_code": "200"}).GetCounter().GetValue(); got != workers*each {
			t.Errorf("%s = %v, want %d", name, got, workers*each)
		}
	}
}

// TestRequestMetricsManyRouteTags: past the cap, attribute sets share one
// overflow series (empty labels in 1.15, otel.metric.overflow=true in the
// newest), so memory stays bounded and nothing goes uncounted.
func TestRequestMetricsManyRouteTags(t *testing.T) {
	for _, gen := range []*Generation{Generation115, GenerationNewest} {
		t.Run(gen.Name, func(t *testing.T) {
			verifyNoLeaks(t)
			clk := clocktest.NewFakeClock(time.Unix(0, 0))
			cfg := testIdentity
			cfg.Generation = gen
			cfg.RouteTag = routeTagHeaders
			m := newTestMetrics(t, clk, cfg)
			h := m.RequestHandler(timedApp(clk))
			const tags = maxSeriesPerLayer + 10
			for round := 0; round < 2; round++ {
				for i := 0; i < tags; i++ {
					serve(h, map[string]string{"Knative-Serving-Tag": "t" + strconv.Itoa(i)})
				}
			}
			if n := len(*m.points[PointServer].m.Load()); n != maxSeriesPerLayer {
				t.Errorf("%d series, want the cap %d", n, maxSeriesPerLayer)
			}
			_, fams := scrape(t, m)
			name, route, overflow := "revision_request_count", "route_tag", ""
			if gen == GenerationNewest {
				name, route, overflow = "http_server_request_duration_seconds", "kn_route_tag", "otel_metric_overflow"
			}
			f := fams[name]
			if len(f.Metric) != maxSeriesPerLayer+1 {
				t.Fatalf("%d series, want %d and the overflow series", len(f.Metric), maxSeriesPerLayer)
			}
			var overflowed int
			for _, mt := range f.Metric {
				l := labelsOf(mt)
				v := mt.GetCounter().GetValue() + float64(mt.GetHistogram().GetSampleCount())
				if l[route] == "" {
					overflowed++
					if v != 2*10 || (overflow != "" && l[overflow] != "true") {
						t.Errorf("overflow series %v = %v, want 20", l, v)
					}
					continue
				}
				if v != 2 {
					t.Errorf("%v = %v, want 2", l, v)
				}
			}
			if overflowed != 1 {
				t.Errorf("%d overflow series, want 1", overflowed)
			}
		})
	}
}

func TestMemStatsRefresh(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	m := newTestMetrics(t, clk, MetricsConfig{MemStatsPeriod: 30 * time.Second})

	// Startup does not read the memory statistics; the first scrape does.
	// (The meter handles commands in order, so a sample recorded by
	// NewMetrics would be seen here.)
	if rows, err := m.meter.RetrieveData(memStats[0].name); err != nil || len(rows) != 0 {
		t.Errorf("%s before the first scrape: %v, %v; want no rows", memStats[0].name, rows, err)
	}
	_, fams := scrape(t, m)
	for _, st := range memStats {
		f := fams["revision_"+st.name]
		if f == nil || f.GetType() != dto.MetricType_GAUGE || len(f.Metric) != 1 || len(f.Metric[0].Label) != 0 {
			t.Errorf("revision_%s: %v; want one unlabelled gauge from the first sample", st.name, f)
		}
	}
	if v := fams["revision_go_sys"].Metric[0].GetGauge().GetValue(); v <= 0 {
		t.Errorf("revision_go_sys = %v, want > 0", v)
	}
	before := fams["revision_go_num_forced_gc"].Metric[0].GetGauge().GetValue()

	runtime.GC()
	clk.Step(29 * time.Second) // not yet a period
	_, fams = scrape(t, m)
	if got := fams["revision_go_num_forced_gc"].Metric[0].GetGauge().GetValue(); got != before {
		t.Errorf("num_forced_gc refreshed before the period: %v -> %v", before, got)
	}
	clk.Step(time.Second)
	// The refresh runs on its own goroutine; wait for its result.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, fams = scrape(t, m)
		if got := fams["revision_go_num_forced_gc"].Metric[0].GetGauge().GetValue(); got > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("num_forced_gc still %v after a period and a runtime.GC", before)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMetricsHandlerRoutes(t *testing.T) {
	verifyNoLeaks(t)
	m := newTestMetrics(t, clocktest.NewFakeClock(time.Unix(0, 0)), testIdentity)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodHead, "/metrics", http.StatusOK},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodPut, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/metrics/x", http.StatusNotFound},
	} {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.code {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, w.Code, tc.code)
		}
	}
}

// TestMetricsStop: after Stop the layers pass requests through unmeasured
// and a scrape is empty; nothing panics on the stopped meter.
func TestMetricsStop(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	m := newTestMetrics(t, clk, MetricsConfig{QueueDepth: func() int { return 1 }})
	h := testChain(m, clk, timedApp(clk))
	for i := 0; i < batchSize-1; i++ { // a batch pending at Stop
		serve(h, nil)
	}
	m.Stop()
	m.Stop()
	for i := 0; i < 2*batchSize; i++ {
		if w := serve(h, map[string]string{"X-Code": "201"}); w.Code != http.StatusCreated {
			t.Fatalf("after Stop: %d, want 201", w.Code)
		}
	}
	if body, _ := scrape(t, m); body != "" {
		t.Errorf("scrape after Stop = %q, want empty", body)
	}
}

func TestTagValue(t *testing.T) {
	long := strings.Repeat("a", 300)
	for in, want := range map[string]string{
		"":           "",
		"canary":     "canary",
		`x"y\z`:      `x"y\z`,
		"caf\u00e9":  "caf__",
		"a\tb\x7f":   "a_b_",
		long:         long[:255],
		"ok " + long: ("ok " + long)[:255],
	} {
		if got := tagValue(in); got != want {
			t.Errorf("tagValue(%q) = %q, want %q", in, got, want)
		}
	}
	for code, want := range map[string]string{"100": "1xx", "200": "2xx", "204": "2xx", "404": "4xx", "503": "5xx", "999": "9xx", "42": "0xx", "": "", "x": ""} {
		if got := codeClassOf(code); got != want {
			t.Errorf("codeClassOf(%q) = %q, want %q", code, got, want)
		}
	}
}

// TestNewMetricsIndependent: two Metrics (two queue-proxies in one test
// process) do not share data.
func TestNewMetricsIndependent(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	a := newTestMetrics(t, clk, MetricsConfig{Pod: "a"})
	b := newTestMetrics(t, clk, MetricsConfig{Pod: "b"})
	serve(a.AppHandler(timedApp(clk)), nil)
	_, fa := scrape(t, a)
	_, fb := scrape(t, b)
	if fa["revision_app_request_count"] == nil || fb["revision_app_request_count"] != nil {
		t.Errorf("a has %v, b has %v; want only a's request", fa["revision_app_request_count"], fb["revision_app_request_count"])
	}
}

// TestIsProbe: our probe check agrees with netheader.IsProbe, and its keys
// are canonical (else the direct lookups would never match).
func TestIsProbe(t *testing.T) {
	for _, k := range []string{"User-Agent", netheader.KubeletProbeKey, netheader.ProbeKey} {
		if http.CanonicalHeaderKey(k) != k {
			t.Errorf("%q is not canonical", k)
		}
	}
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"none", http.Header{}},
		{"ordinary user agent", http.Header{"User-Agent": {"curl/8"}}},
		{"kubelet", http.Header{"User-Agent": {"kube-probe/1.31"}}},
		{"kubelet prefix only", http.Header{"User-Agent": {"kube-probe/"}}},
		{"kubelet not first value", http.Header{"User-Agent": {"curl/8", "kube-probe/1.31"}}},
		{"kube-probe not a prefix", http.Header{"User-Agent": {"x kube-probe/1.31"}}},
		{"activator probe", http.Header{"User-Agent": {"Knative-Activator-Probe"}, "K-Network-Probe": {"queue"}}},
		{"kubelet header", http.Header{"K-Kubelet-Probe": {"queue"}}},
		{"kubelet header empty", http.Header{"K-Kubelet-Probe": {""}}},
		{"kubelet header empty then set", http.Header{"K-Kubelet-Probe": {"", "x"}}},
		{"network probe any value", http.Header{"K-Network-Probe": {"whatever"}}},
		{"network probe empty", http.Header{"K-Network-Probe": {""}}},
		{"network probe no values", http.Header{"K-Network-Probe": {}}},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header = tc.header
		if got, want := isProbe(r.Header), netheader.IsProbe(r); got != want {
			t.Errorf("%s: isProbe = %v, netheader.IsProbe = %v", tc.name, got, want)
		}
	}
}

// TestSeriesSendsFullBatches: a full batch goes to the meter at once, with
// no scrape or refresh to flush it; a partial one waits for the flush.
func TestSeriesSendsFullBatches(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(0, 0))
	m := newTestMetrics(t, clk, testIdentity)
	h := m.AppHandler(timedApp(clk))
	count := func() int64 {
		rows, err := m.meter.RetrieveData("app_request_latencies")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, r := range rows {
			n += r.Data.(*view.DistributionData).Count
		}
		return n
	}
	for i := 0; i < batchSize-1; i++ {
		serve(h, nil)
	}
	if n := count(); n != 0 {
		t.Errorf("%d values aggregated before the batch was full, want 0", n)
	}
	serve(h, nil)
	if n := count(); n != batchSize {
		t.Errorf("%d values aggregated after a full batch, want %d", n, batchSize)
	}
	serve(h, nil)
	m.flush()
	if n := count(); n != batchSize+1 {
		t.Errorf("%d values aggregated after a flush, want %d", n, batchSize+1)
	}
}
