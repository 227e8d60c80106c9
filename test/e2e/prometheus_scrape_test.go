package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
)

// Generations, as the value of the generation label Prometheus adds to each
// target.
const (
	gen115    = "1.15"
	genNewest = "newest"
)

// Values the request metrics must carry for knativeEnv (§1c, §5.2).
const (
	wantNamespace     = "default"
	wantService       = "hello"
	wantConfiguration = "hello"
	wantRevision      = "hello-00001"
)

// promRequest is one request of the traffic both generations get, with the
// route tag each generation must report for it (§3.7).
type promRequest struct {
	path    string
	header  map[string]string
	code    int
	tag115  string
	tagNew  string
	repeats int
}

// promTraffic: various status codes and every route-tag case. None is a
// probe, so each is counted once by every request metric.
var promTraffic = []promRequest{
	{path: "/", code: 200, tag115: "DISABLED", tagNew: "kn:disabled", repeats: 3},
	{path: "/status?code=404", code: 404, tag115: "DISABLED", tagNew: "kn:disabled", repeats: 1},
	{path: "/status?code=500", code: 500, tag115: "DISABLED", tagNew: "kn:disabled", repeats: 1},
	{path: "/status?code=503", code: 503, tag115: "DISABLED", tagNew: "kn:disabled", repeats: 2},
	{path: "/", header: map[string]string{"Knative-Serving-Tag": "canary"}, code: 200, tag115: "canary", tagNew: "canary", repeats: 1},
	{path: "/", header: map[string]string{"Knative-Serving-Default-Route": "true"}, code: 200, tag115: "DEFAULT", tagNew: "kn:default", repeats: 1},
	{path: "/", header: map[string]string{"Knative-Serving-Tag": "blue", "Knative-Serving-Default-Route": "true"}, code: 200, tag115: "UNDEFINED", tagNew: "kn:undefined", repeats: 1},
}

// TestPrometheusScrapesBothGenerations runs Debian's prometheus server
// against the user-metrics endpoint (:9091) of two queue-proxies, one with
// the 1.15 environment (SERVING_REQUEST_METRICS_BACKEND=prometheus, no
// OBSERVABILITY_CONFIG) and one with the newest (OBSERVABILITY_CONFIG
// requestMetrics.protocol=prometheus), and checks through its HTTP API that
// every family of CONTRACT.md §5.3 is there for its generation, with the
// labels of the table, and that the request counts match the traffic sent.
func TestPrometheusScrapesBothGenerations(t *testing.T) {
	promBin := lookPrometheus(t)
	t.Parallel()

	var userPort int
	harness.StartApp(t, bins.App, &userPort, nil)

	qps := map[string]*stack{
		gen115: startQPWith(t, userPort, func(env map[string]string) {
			// The 1.15 reconciler set neither OBSERVABILITY_CONFIG nor
			// QUEUE_PROXY_TLS_* (§1d), but these.
			delete(env, "OBSERVABILITY_CONFIG")
			for _, k := range []string{"MIN_VERSION", "MAX_VERSION", "CIPHER_SUITES", "CURVE_PREFERENCES"} {
				delete(env, "QUEUE_PROXY_TLS_"+k)
			}
			maps.Copy(env, map[string]string{
				"CONTAINER_CONCURRENCY":                            "10",
				"SERVING_REQUEST_METRICS_BACKEND":                  "prometheus",
				"SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS": "5",
				"METRICS_DOMAIN":                                   "knative.dev/internal/serving",
				"SERVING_ENABLE_REQUEST_LOG":                       "false",
				"SERVING_REQUEST_LOG_TEMPLATE":                     "",
				"SERVING_ENABLE_PROBE_REQUEST_LOG":                 "false",
				"TRACING_CONFIG_BACKEND":                           "none",
				"TRACING_CONFIG_ZIPKIN_ENDPOINT":                   "",
				"TRACING_CONFIG_DEBUG":                             "false",
				"TRACING_CONFIG_SAMPLE_RATE":                       "0.1",
				"ENABLE_PROFILING":                                 "false",
				"HOSTNAME":                                         podName, // as Kubernetes sets it
			})
		}),
		genNewest: startQPWith(t, userPort, func(env map[string]string) {
			maps.Copy(env, map[string]string{
				"CONTAINER_CONCURRENCY": "10",
				"OBSERVABILITY_CONFIG":  `{"tracing":{"protocol":"none"},"metrics":{"protocol":"none"},"runtime":{"profiling":"disabled","exportInterval":15000000000},"requestMetrics":{"protocol":"prometheus"}}`,
				// Kubernetes sets HOSTNAME to the pod name; the newest
				// generation takes k8s.pod.name from it (§1b).
				"HOSTNAME": podName,
			})
		}),
	}

	// All traffic is sent before Prometheus starts, so that its first
	// scrape of each target sees all of it.
	for _, gen := range []string{gen115, genNewest} {
		sendPromTraffic(t, qps[gen])
	}

	targets := map[string]int{gen115: qps[gen115].ports.Prometheus, genNewest: qps[genNewest].ports.Prometheus}
	prom := startPrometheus(t, promBin, targets)
	prom.waitScraped(t, slices.Collect(maps.Keys(targets)))

	t.Run(gen115, func(t *testing.T) {
		prom.requireUp(t, gen115)
		series := prom.seriesOf(t, gen115)
		fams := families115()
		// revision_go_* (label-less gauges) come with Knative's MemStats
		// period of 30 s; when they are already there, check them too.
		for name := range series {
			if strings.HasPrefix(name, "revision_go_") {
				fams = append(fams, family{name: name, kind: kindGauge})
			}
		}
		checkFamilies(t, series, fams)
		prom.checkMetadata(t, series, fams)
		checkNoOthers(t, series, "revision_", "the 1.15 :9091 serves only revision_* (OpenCensus registry; §5.3)")
		checkHistogramBuckets(t, series, "revision_request_latencies", latencyBucketsMs)
		checkHistogramBuckets(t, series, "revision_app_request_latencies", latencyBucketsMs)

		codeTag, code := wantCounts(func(r promRequest) string { return r.tag115 })
		prom.checkSum(t, `sum by (response_code, route_tag) (revision_request_count{generation="1.15"})`, codeTag)
		prom.checkSum(t, `sum by (response_code, route_tag) (revision_request_latencies_count{generation="1.15"})`, codeTag)
		prom.checkSum(t, `sum by (response_code) (revision_app_request_count{generation="1.15"})`, code)
		prom.checkSum(t, `sum by (response_code) (revision_app_request_latencies_count{generation="1.15"})`, code)
	})

	t.Run(genNewest, func(t *testing.T) {
		prom.requireUp(t, genNewest)
		series := prom.seriesOf(t, genNewest)
		fams := familiesNewest(qps[genNewest].ports)
		checkFamilies(t, series, fams)
		prom.checkMetadata(t, series, fams)
		var old []string
		for _, name := range slices.Sorted(maps.Keys(series)) {
			if strings.HasPrefix(name, "revision_") {
				old = append(old, name)
			}
		}
		if len(old) > 0 {
			t.Errorf("the newest generation exposes the 1.15 series %s", strings.Join(old, ", "))
		}
		checkHistogramBuckets(t, series, "kn_serving_invocation_duration_seconds", durationBucketsS)
		checkHistogramBuckets(t, series, "http_server_request_duration_seconds", durationBucketsS)

		codeTag, code := wantCounts(func(r promRequest) string { return r.tagNew })
		prom.checkSum(t, `sum by (http_response_status_code, kn_route_tag) (http_server_request_duration_seconds_count{generation="newest"})`,
			renameKeys(codeTag, "response_code", "http_response_status_code", "route_tag", "kn_route_tag"))
		prom.checkSum(t, `sum by (http_response_status_code) (kn_serving_invocation_duration_seconds_count{generation="newest"})`,
			renameKeys(code, "response_code", "http_response_status_code"))
		// The client side also sees the probes queue-proxy forwarded to
		// the app (§3.2, §3.3).
		client := renameKeys(code, "response_code", "http_response_status_code")
		client[`http_response_status_code="200"`] += float64(len(forwardedProbeHeaders))
		prom.checkSum(t, `sum by (http_response_status_code) (http_client_request_duration_seconds_count{generation="newest"})`, client)
	})
}

// lookPrometheus finds the prometheus server: a skip on a developer's
// machine without it, a failure in CI (.ci/run installs the Debian package
// prometheus, which also brings promtool).
func lookPrometheus(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus not found in CI; .ci/run installs it (Debian package prometheus)")
		}
		t.Skip("prometheus server not installed (apt-get install prometheus); CI runs this test")
	}
	return p
}

// sendPromTraffic sends promTraffic and probes, which no request metric of
// the server side may count (§5.4).
func sendPromTraffic(t *testing.T, s *stack) {
	t.Helper()
	for _, r := range promTraffic {
		for range r.repeats {
			req := get(s.url(r.path))
			for k, v := range r.header {
				req.Header.Set(k, v)
			}
			if got := mustFetch(t, s.c, req); got.code != r.code {
				t.Fatalf("GET %s %v: status %d, want %d (body %q)", r.path, r.header, got.code, r.code, got.body)
			}
		}
	}
	// Answered by queue-proxy itself.
	for _, ua := range []string{kubeletUA, activatorUA} {
		if r := s.probe(ua, "queue"); r.code != http.StatusOK || r.body != "queue" {
			t.Fatalf("probe as %s: %d %q", ua, r.code, r.body)
		}
	}
	// Forwarded to the app, but still probes for the metrics.
	for _, h := range forwardedProbeHeaders {
		req := get(s.url("/"))
		req.Header.Set(h, "queue")
		if r := mustFetch(t, s.c, req); r.code != http.StatusOK {
			t.Fatalf("request with %s: %d %q", h, r.code, r.body)
		}
	}
}

// forwardedProbeHeaders make a request a probe (§5.4) that queue-proxy
// nevertheless forwards to the app, with any other User-Agent (§3.3, §3.9).
var forwardedProbeHeaders = []string{"K-Kubelet-Probe", "K-Network-Probe"}

// wantCounts returns the expected request counts of promTraffic keyed by
// `response_code="…",route_tag="…"` (with tag giving the generation's route
// tag) and by `response_code="…"`.
func wantCounts(tag func(promRequest) string) (byCodeTag, byCode map[string]float64) {
	byCodeTag, byCode = map[string]float64{}, map[string]float64{}
	for _, r := range promTraffic {
		c := strconv.Itoa(r.code)
		byCodeTag[`response_code="`+c+`",route_tag="`+tag(r)+`"`] += float64(r.repeats)
		byCode[`response_code="`+c+`"`] += float64(r.repeats)
	}
	return byCodeTag, byCode
}

// renameKeys renames label names in the keys of a wantCounts map; pairs is
// old, new, old, new, ...
func renameKeys(m map[string]float64, pairs ...string) map[string]float64 {
	r := strings.NewReplacer(func() []string {
		var l []string
		for i := 0; i+1 < len(pairs); i += 2 {
			l = append(l, pairs[i]+"=", pairs[i+1]+"=")
		}
		return l
	}()...)
	out := map[string]float64{}
	for k, v := range m {
		out[r.Replace(k)] = v
	}
	return out
}

// Histogram buckets of §5.3: the 1.15 latencies in milliseconds, the newest
// durations in seconds.
var (
	latencyBucketsMs = []float64{5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000}
	durationBucketsS = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
)

// checkHistogramBuckets checks that every series of name_bucket has one of
// the given upper bounds or +Inf, and that all of them occur.
func checkHistogramBuckets(t *testing.T, series map[string][]map[string]string, name string, bounds []float64) {
	t.Helper()
	buckets := series[name+"_bucket"]
	if len(buckets) == 0 {
		return // checkFamilies reports the missing family
	}
	want := map[string]bool{"+Inf": true}
	for _, b := range bounds {
		want[strconv.FormatFloat(b, 'g', -1, 64)] = true
	}
	seen := map[string]bool{}
	for _, s := range buckets {
		le := s["le"]
		if f, err := strconv.ParseFloat(le, 64); err == nil && le != "+Inf" {
			le = strconv.FormatFloat(f, 'g', -1, 64)
		}
		if !want[le] {
			t.Errorf("%s_bucket has le=%q, which is not a bucket of §5.3 %v", name, s["le"], bounds)
		}
		seen[le] = true
	}
	for le := range want {
		if !seen[le] {
			t.Errorf("%s_bucket lacks le=%s (§5.3 buckets %v)", name, le, bounds)
		}
	}
}

// checkNoOthers fails on any family not starting with prefix.
func checkNoOthers(t *testing.T, series map[string][]map[string]string, prefix, why string) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(series)) {
		if !strings.HasPrefix(name, prefix) {
			t.Errorf("unexpected family %s: %s", name, why)
		}
	}
}

// prometheusServer is a running prometheus and its HTTP API.
type prometheusServer struct {
	p    *harness.Process
	base string
	c    *http.Client
}

// startPrometheus starts prometheus scraping each target (generation ->
// port on 127.0.0.1) every second, with its storage in a temporary
// directory, and waits until its API answers.
func startPrometheus(t *testing.T, bin string, targets map[string]int) *prometheusServer {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1m\n")
	cfg.WriteString("scrape_configs:\n  - job_name: queue-proxy\n    static_configs:\n")
	for _, gen := range slices.Sorted(maps.Keys(targets)) {
		fmt.Fprintf(&cfg, "      - targets: ['127.0.0.1:%d']\n        labels: {generation: '%s'}\n", targets[gen], gen)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	ps := &prometheusServer{c: c}
	attempt := 0
	ps.p = harness.StartRetrying(t, "prometheus", func() (*harness.Process, error) {
		attempt++
		port := harness.FreePort(t)
		ps.base = hostURL(port, "")
		p := harness.Start(t, "prometheus", bin, []string{
			"--config.file=" + cfgFile,
			"--storage.tsdb.path=" + filepath.Join(dir, fmt.Sprint("data", attempt)),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		}, harness.ChildEnv(nil))
		return p, p.Await(harness.StartupTimeout, 50*time.Millisecond, func() (bool, string) {
			r, err := fetch(c, get(ps.base+"/-/ready"))
			return err == nil && r.code == http.StatusOK, fmt.Sprint("/-/ready: ", r.code, " ", r.body, " ", err)
		})
	})
	return ps
}

// promResponse is the envelope of every API answer.
type promResponse[T any] struct {
	Status    string `json:"status"`
	Data      T      `json:"data"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

// api GETs /api/v1/<path> with the query parameters and decodes data.
func apiGet[T any](t *testing.T, ps *prometheusServer, path string, params ...string) T {
	t.Helper()
	q := make([]string, 0, len(params)/2)
	for i := 0; i+1 < len(params); i += 2 {
		q = append(q, url.QueryEscape(params[i])+"="+url.QueryEscape(params[i+1]))
	}
	u := ps.base + "/api/v1/" + path
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	r := mustFetch(t, ps.c, get(u))
	var resp promResponse[T]
	if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
		t.Fatalf("GET %s: %d, undecodable body %q: %v", u, r.code, r.body, err)
	}
	if r.code != http.StatusOK || resp.Status != "success" {
		t.Fatalf("GET %s: %d %s: %s %s", u, r.code, resp.Status, resp.ErrorType, resp.Error)
	}
	return resp.Data
}

// promTarget is an active target of /api/v1/targets.
type promTarget struct {
	Labels     map[string]string `json:"labels"`
	Health     string            `json:"health"`
	LastError  string            `json:"lastError"`
	LastScrape time.Time         `json:"lastScrape"`
	ScrapeURL  string            `json:"scrapeUrl"`
}

type promTargets struct {
	ActiveTargets []promTarget `json:"activeTargets"`
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

type promVector struct {
	ResultType string       `json:"resultType"`
	Result     []promSample `json:"result"`
}

// waitScraped waits until every generation's target has been scraped and
// the samples of that scrape are queryable: `up` is appended in the same
// commit as the scraped samples.
func (ps *prometheusServer) waitScraped(t *testing.T, gens []string) {
	t.Helper()
	eventually(t, 20*time.Second, 100*time.Millisecond, "prometheus scrapes both queue-proxies", func() (bool, string) {
		if ps.p.Exited() {
			t.Fatalf("prometheus exited with status %d", ps.p.Code())
		}
		v := apiGet[promVector](t, ps, "query", "query", `up{job="queue-proxy"}`)
		seen := map[string]bool{}
		for _, s := range v.Result {
			seen[s.Metric["generation"]] = true
		}
		for _, g := range gens {
			if !seen[g] {
				return false, fmt.Sprintf("no up sample for generation %q yet; targets: %s", g, ps.targetsSummary(t))
			}
		}
		return true, ""
	})
}

// targetsSummary describes the active targets, for failure messages.
func (ps *prometheusServer) targetsSummary(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, tg := range apiGet[promTargets](t, ps, "targets", "state", "active").ActiveTargets {
		fmt.Fprintf(&b, "[%s %s health=%s lastScrape=%s lastError=%q] ", tg.Labels["generation"], tg.ScrapeURL,
			tg.Health, tg.LastScrape.Format(time.RFC3339Nano), tg.LastError)
	}
	return b.String()
}

// requireUp fails the test unless the generation's target is up.
func (ps *prometheusServer) requireUp(t *testing.T, gen string) {
	t.Helper()
	for _, tg := range apiGet[promTargets](t, ps, "targets", "state", "active").ActiveTargets {
		if tg.Labels["generation"] != gen {
			continue
		}
		if tg.Health != "up" {
			t.Fatalf("prometheus cannot scrape the %s queue-proxy (%s): health %s, error %q", gen, tg.ScrapeURL, tg.Health, tg.LastError)
		}
		return
	}
	t.Fatalf("prometheus has no target for generation %s: %s", gen, ps.targetsSummary(t))
}

// targetLabels are added by prometheus, not exposed by queue-proxy.
var targetLabels = []string{"__name__", "job", "instance", "generation"}

// seriesOf returns every series scraped from the generation's target, by
// metric name, with the target's own labels removed.
func (ps *prometheusServer) seriesOf(t *testing.T, gen string) map[string][]map[string]string {
	t.Helper()
	all := apiGet[[]map[string]string](t, ps, "series", "match[]", `{job="queue-proxy",generation="`+gen+`"}`)
	out := map[string][]map[string]string{}
	for _, s := range all {
		name := s["__name__"]
		if isScrapeMeta(name) {
			continue
		}
		for _, l := range targetLabels {
			delete(s, l)
		}
		out[name] = append(out[name], s)
	}
	if len(out) == 0 {
		t.Fatalf("no series at all from the %s queue-proxy", gen)
	}
	return out
}

// isScrapeMeta reports whether name is one of the series prometheus itself
// records per scrape.
func isScrapeMeta(name string) bool {
	return name == "up" || strings.HasPrefix(name, "scrape_")
}

// checkSum runs an instant query whose result is keyed by its labels and
// compares it with want (keys as `a="x",b="y"`, label names sorted).
func (ps *prometheusServer) checkSum(t *testing.T, query string, want map[string]float64) {
	t.Helper()
	v := apiGet[promVector](t, ps, "query", "query", query)
	got := map[string]float64{}
	for _, s := range v.Result {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Metric)) {
			parts = append(parts, k+`="`+s.Metric[k]+`"`)
		}
		str, _ := s.Value[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("%s: value %v: %v", query, s.Value, err)
		}
		got[strings.Join(parts, ",")] = f
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s\n got: %v\nwant: %v", query, sortedMap(got), sortedMap(want))
	}
}

func sortedMap(m map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "{%s}=%g ", k, m[k])
	}
	return b.String()
}
