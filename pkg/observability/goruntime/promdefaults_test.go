package goruntime

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clientScrape serves one scrape of a registry built as the Prometheus
// client's default one (Go and process collectors with default options),
// behind promhttp's own instrumentation, and returns the body.
type clientScrape struct{ h http.Handler }

func newClientScrape() clientScrape {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return clientScrape{promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))}
}

func (c clientScrape) scrape(t *testing.T) string { return serve(t, c.h) }

// ourHandler serves Append behind Instrument, as the :9091 server does.
func ourHandler(p *PromDefaults) http.Handler {
	return p.Instrument(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(p.Append(nil))
	}))
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape answered %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("expfmt cannot parse the exposition: %v\n%s", err, body)
	}
	return fams
}

// value is the value of a family's only (or first) sample.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok || len(f.Metric) == 0 {
		t.Fatalf("family %s missing", name)
	}
	m := f.Metric[0]
	switch f.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_SUMMARY:
		return float64(m.GetSummary().GetSampleCount())
	}
	t.Fatalf("family %s: unexpected type %v", name, f.GetType())
	return 0
}

func labelNames(m *dto.Metric) []string {
	var names []string
	for _, l := range m.Label {
		names = append(names, l.GetName())
	}
	return names
}

// familyOrder lists the family names in the order of their HELP lines.
func familyOrder(body string) []string {
	var names []string
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			names = append(names, strings.Fields(rest)[0])
		}
	}
	return names
}

// TestAppendMatchesClient: the same families as the Prometheus client's
// default registry and promhttp handler, in the same order, with the same
// types, help texts, label names and sample sets; values equal where they
// cannot move between the two scrapes and close (or ordered) otherwise.
func TestAppendMatchesClient(t *testing.T) {
	client, ours := newClientScrape(), NewPromDefaults()
	ourH := ourHandler(ours)
	// The second scrape of each sees its first in requests_total.
	client.scrape(t)
	serve(t, ourH)
	runtime.GC() // go_gc_duration_seconds has pauses to summarise
	theirBody := client.scrape(t)
	ourBody := serve(t, ourH)
	theirs, mine := parse(t, theirBody), parse(t, ourBody)

	if got, want := familyOrder(ourBody), familyOrder(theirBody); !slices.Equal(got, want) {
		t.Fatalf("families:\n got %v\nwant %v", got, want)
	}
	for name, want := range theirs {
		got := mine[name]
		if got.GetType() != want.GetType() || got.GetHelp() != want.GetHelp() {
			t.Errorf("%s: type %v help %q, want type %v help %q", name, got.GetType(), got.GetHelp(), want.GetType(), want.GetHelp())
		}
		if len(got.Metric) != len(want.Metric) {
			t.Errorf("%s: %d samples, want %d", name, len(got.Metric), len(want.Metric))
			continue
		}
		for i := range want.Metric {
			if g, w := labelNames(got.Metric[i]), labelNames(want.Metric[i]); !slices.Equal(g, w) {
				t.Errorf("%s: labels %v, want %v", name, g, w)
			}
			if want.GetType() == dto.MetricType_SUMMARY {
				var gq, wq []float64
				for _, q := range got.Metric[i].GetSummary().Quantile {
					gq = append(gq, q.GetQuantile())
				}
				for _, q := range want.Metric[i].GetSummary().Quantile {
					wq = append(wq, q.GetQuantile())
				}
				if !slices.Equal(gq, wq) {
					t.Errorf("%s: quantiles %v, want %v", name, gq, wq)
				}
			}
		}
	}

	// Values that cannot change between the two scrapes.
	for _, name := range []string{
		"go_gc_gogc_percent", "go_gc_gomemlimit_bytes", "go_sched_gomaxprocs_threads", "go_info",
		"process_max_fds", "process_virtual_memory_max_bytes", "process_start_time_seconds",
		"promhttp_metric_handler_requests_in_flight",
	} {
		if g, w := value(t, mine, name), value(t, theirs, name); g != w {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	if got := value(t, mine, "promhttp_metric_handler_requests_in_flight"); got != 1 {
		t.Errorf("a scrape sees %v scrapes in flight, want itself: 1", got)
	}
	for _, f := range []map[string]*dto.MetricFamily{theirs, mine} {
		codes := map[string]float64{}
		for _, m := range f["promhttp_metric_handler_requests_total"].Metric {
			codes[m.Label[0].GetValue()] = m.GetCounter().GetValue()
		}
		if want := map[string]float64{"200": 1, "500": 0, "503": 0}; !mapsEqual(codes, want) {
			t.Errorf("promhttp_metric_handler_requests_total = %v, want %v", codes, want)
		}
	}
	if got, want := mine["go_info"].Metric[0].Label[0].GetValue(), runtime.Version(); got != want {
		t.Errorf("go_info version %q, want %q", got, want)
	}

	// Counters read after theirs: never behind.
	for _, name := range []string{
		"go_gc_duration_seconds", "go_memstats_alloc_bytes_total", "go_memstats_mallocs_total",
		"go_memstats_frees_total", "process_cpu_seconds_total",
		"process_network_receive_bytes_total", "process_network_transmit_bytes_total",
	} {
		if g, w := value(t, mine, name), value(t, theirs, name); g < w {
			t.Errorf("%s = %v, behind the client's earlier %v", name, g, w)
		}
	}
	// Gauges that move a little: close to the client's.
	for _, c := range []struct {
		name string
		tol  float64 // absolute
	}{
		{"go_goroutines", 10}, // the client's Gather runs collectors in goroutines of its own
		{"go_threads", 3},
		{"process_open_fds", 3},
		{"process_resident_memory_bytes", 8 << 20},
		{"process_virtual_memory_bytes", 64 << 20},
		{"go_memstats_sys_bytes", 8 << 20},
		{"go_memstats_heap_sys_bytes", 8 << 20},
		{"go_memstats_heap_alloc_bytes", 8 << 20},
		{"go_memstats_heap_inuse_bytes", 8 << 20},
		{"go_memstats_stack_sys_bytes", 1 << 20},
		{"go_memstats_next_gc_bytes", 8 << 20},
		{"go_memstats_last_gc_time_seconds", 60},
		{"go_memstats_heap_idle_bytes", 8 << 20},
		{"go_memstats_heap_objects", 50000},
		{"go_memstats_stack_inuse_bytes", 1 << 20},
		{"go_memstats_mspan_inuse_bytes", 1 << 20},
		{"go_memstats_mspan_sys_bytes", 1 << 20},
		{"go_memstats_mcache_inuse_bytes", 1 << 20},
		{"go_memstats_mcache_sys_bytes", 1 << 20},
		{"go_memstats_buck_hash_sys_bytes", 1 << 20},
		{"go_memstats_gc_sys_bytes", 4 << 20},
		{"go_memstats_other_sys_bytes", 4 << 20},
	} {
		g, w := value(t, mine, c.name), value(t, theirs, c.name)
		if math.Abs(g-w) > c.tol || g <= 0 {
			t.Errorf("%s = %v, client %v (tolerance %v)", c.name, g, w, c.tol)
		}
	}
	if g, w := value(t, mine, "go_goroutines"), float64(runtime.NumGoroutine()); math.Abs(g-w) > 1 {
		t.Errorf("go_goroutines = %v, runtime.NumGoroutine() = %v", g, w)
	}
	// Identities of the derived go_memstats_* values.
	if a, h := value(t, mine, "go_memstats_alloc_bytes"), value(t, mine, "go_memstats_heap_alloc_bytes"); a != h {
		t.Errorf("alloc_bytes %v != heap_alloc_bytes %v", a, h)
	}
	if s, i, d := value(t, mine, "go_memstats_heap_sys_bytes"), value(t, mine, "go_memstats_heap_inuse_bytes"), value(t, mine, "go_memstats_heap_idle_bytes"); s != i+d {
		t.Errorf("heap_sys %v != heap_inuse %v + heap_idle %v", s, i, d)
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestInstrumentCodes: what requests_total counts, as promhttp counts it.
func TestInstrumentCodes(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // code label
	}{
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, "200"},
		{"body only", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("x")) }, "200"},
		{"flush only", func(w http.ResponseWriter, _ *http.Request) { w.(http.Flusher).Flush() }, "200"},
		{"503", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, "503"},
		{"418", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(418) }, "418"},
		{"informational then 200", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(103); w.WriteHeader(200) }, "200"},
		{"out of range", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(999) }, "unknown"},
		{"500 via ResponseController", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(500)
			http.NewResponseController(w).Flush()
		}, "500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			impls := []struct {
				name  string
				serve func() string // serves one request, returns the exposition
			}{
				{"client", func() string {
					reg := prometheus.NewRegistry()
					serveAny(promhttp.InstrumentMetricHandler(reg, tc.handler))
					return gatherText(t, reg)
				}},
				{"ours", func() string {
					p := NewPromDefaults()
					serveAny(p.Instrument(tc.handler))
					return string(p.Append(nil))
				}},
			}
			for _, impl := range impls {
				body := impl.serve()
				codes := map[string]float64{}
				for _, m := range parse(t, body)["promhttp_metric_handler_requests_total"].Metric {
					codes[m.Label[0].GetValue()] = m.GetCounter().GetValue()
				}
				want := map[string]float64{"200": 0, "500": 0, "503": 0}
				want[tc.want]++
				if !mapsEqual(codes, want) {
					t.Errorf("%s: requests_total %v, want %v", impl.name, codes, want)
				}
				if v := value(t, parse(t, body), "promhttp_metric_handler_requests_in_flight"); v != 0 {
					t.Errorf("%s: %v in flight after the request", impl.name, v)
				}
			}
		})
	}
}

func serveAny(h http.Handler) {
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
}

func gatherText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestInstrumentPanic: a panicking handler leaves the in-flight gauge and
// is not counted, as with promhttp.
func TestInstrumentPanic(t *testing.T) {
	p := NewPromDefaults()
	h := p.Instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		serveAny(h)
	}()
	fams := parse(t, string(p.Append(nil)))
	if v := value(t, fams, "promhttp_metric_handler_requests_in_flight"); v != 0 {
		t.Errorf("in flight %v after a panic, want 0", v)
	}
	for _, m := range fams["promhttp_metric_handler_requests_total"].Metric {
		if m.GetCounter().GetValue() != 0 {
			t.Errorf("a panicking scrape was counted under code %s", m.Label[0].GetValue())
		}
	}
}

// TestAppendFakeProc: the process_* values computed from a proc file
// system we control, and what is left out when files are missing.
func TestAppendFakeProc(t *testing.T) {
	stat := "4242 (queue (proxy)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 9 0 123456 1048576000 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	limits := "Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max cpu time              unlimited            unlimited            seconds   \n" +
		"Max open files            1024                 4096                 files     \n" +
		"Max address space         unlimited            unlimited            bytes     \n"
	netstat := "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\n" +
		"IpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 123456 654321\n"
	page := float64(os.Getpagesize())
	tests := []struct {
		name  string
		files map[string]string
		fds   int
		want  map[string]float64 // absent families must be absent
	}{
		{
			name: "all",
			files: map[string]string{
				"stat": "cpu 1 2 3\nbtime 1700000000\nprocesses 5\n", "self/stat": stat,
				"self/limits": limits, "self/net/netstat": netstat,
			},
			fds: 3,
			want: map[string]float64{
				"process_cpu_seconds_total":            3.75,
				"process_virtual_memory_bytes":         1048576000,
				"process_resident_memory_bytes":        2560 * page,
				"process_start_time_seconds":           1700000000 + 1234.56,
				"process_open_fds":                     3, // entries counted: no size shortcut outside the real /proc
				"process_max_fds":                      1024,
				"process_virtual_memory_max_bytes":     math.MaxUint64,
				"process_network_receive_bytes_total":  123456,
				"process_network_transmit_bytes_total": 654321,
			},
		},
		{
			name:  "no boot time, no netstat, bad limits",
			files: map[string]string{"stat": "cpu 1\n", "self/stat": stat, "self/limits": "Limit\nMax open files  x\n"},
			want: map[string]float64{
				"process_cpu_seconds_total":     3.75,
				"process_virtual_memory_bytes":  1048576000,
				"process_resident_memory_bytes": 2560 * page,
				"process_open_fds":              0,
			},
		},
		{
			name:  "nothing readable",
			files: map[string]string{"self/stat": "garbage"},
			want:  map[string]float64{"process_open_fds": 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, root+"/"+name, content)
			}
			for i := range tc.fds {
				writeFile(t, root+"/self/fd/"+string(rune('0'+i)), "")
			}
			if err := os.MkdirAll(root+"/self/fd", 0o755); err != nil {
				t.Fatal(err)
			}
			fams := parse(t, string(newPromDefaults(root).Append(nil)))
			for name := range fams {
				if strings.HasPrefix(name, "process_") {
					if _, ok := tc.want[name]; !ok {
						t.Errorf("%s present, want it left out", name)
					}
				}
			}
			for name, want := range tc.want {
				if _, ok := fams[name]; !ok {
					t.Errorf("%s missing", name)
					continue
				}
				if got := value(t, fams, name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(path[:strings.LastIndexByte(path, '/')], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPromtoolCheckMetrics runs Prometheus' own linter over the output:
// no finding at all. Without promtool (Debian package prometheus) the test
// is skipped on a developer's machine, never in CI (CI=true).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found in CI; .ci/run installs it (Debian package prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus); CI runs this test")
	}
	p := NewPromDefaults()
	serve(t, ourHandler(p))
	body := serve(t, ourHandler(p))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running promtool: %v", err)
	}
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("promtool check metrics (%v):\n%s\non:\n%s", err, out.String(), body)
	}
}
