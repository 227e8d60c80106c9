package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

const wrkOutput = `Running 2s test @ http://127.0.0.1:28777/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.50ms   13.42ms 160.19ms   94.35%
    Req/Sec     1.87k   838.53     2.82k    65.00%
  Latency Distribution
     50%  540.00us
     75%  777.00us
     90%    2.84ms
     99%    1.07s
  3778 requests in 2.08s, 435.36KB read
  Socket errors: connect 1, read 18, write 3, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   1815.54
Transfer/sec:    209.21KB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{
		requests: 3778, rps: 1815.54,
		p50: 540 * time.Microsecond, p90: 2840 * time.Microsecond, p99: 1070 * time.Millisecond,
		socketErrors: 24, non2xx3xx: 7,
	}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}

	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("parseWrk accepted output without results")
	}
	if _, err := parseWrk(strings.Replace(wrkOutput, "540.00us", "540.00xs", 1)); err == nil {
		t.Error("parseWrk accepted an unknown latency unit")
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 2 may contain spaces and parentheses; utime=250, stime=50.
	stat := "4242 (queue (proxy) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 5 0 100 1000 200 18446744073709551615\n"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.0 {
		t.Errorf("parseStatCPU = %v, want 3.0 (300 ticks)", got)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("parseStatCPU accepted a short line")
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tqueue-proxy\nVmPeak:\t  1300000 kB\nVmHWM:\t    12000 kB\nVmRSS:\t     8000 kB\nThreads:\t5\n"
	rss, peak, err := parseStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if rss != 8000<<10 || peak != 12000<<10 {
		t.Errorf("rss, peak = %d, %d; want %d, %d", rss, peak, 8000<<10, 12000<<10)
	}
	if _, _, err := parseStatusMemory("Name:\tx\n"); err == nil {
		t.Error("parseStatusMemory accepted a status without VmRSS")
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("odd: %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("even: %v", got)
	}
	if got := median([]float64{math.NaN(), 5, math.NaN()}); got != 5 {
		t.Errorf("NaNs are ignored: %v", got)
	}
	if got := median([]float64{math.NaN()}); !math.IsNaN(got) {
		t.Errorf("all NaN: %v, want NaN", got)
	}
	if got := median([]time.Duration{3 * time.Millisecond, time.Millisecond}); got != 2*time.Millisecond {
		t.Errorf("durations: %v", got)
	}
	if got := median[time.Duration](nil); got != 0 {
		t.Errorf("no durations: %v", got)
	}
}

// envMap is qpEnv's result as a map.
func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		m[name] = value
	}
	return m
}

// TestQPEnvHasTheReconcilers: the benchmark runs queue-proxy with every
// variable Knative's newest reconciler sets, so that it drifts with
// neither; with Zipkin tracing, as the 1.15 reconciler sets it, there is no
// OBSERVABILITY_CONFIG.
func TestQPEnvHasTheReconcilers(t *testing.T) {
	for _, mode := range []string{tracingOff, tracingZipkin, tracingOTLP} {
		env := envMap(qpEnv(1, 2, 3, 4, 5, 6, 7, 0, true, false, tracing{mode: mode, rate: 1, sinkPort: 8}))
		for _, name := range sharedmain.ReconcilerEnv() {
			if _, ok := env[name]; !ok && !(mode == tracingZipkin && name == "OBSERVABILITY_CONFIG") {
				t.Errorf("tracing %q: qpEnv lacks %s, which the reconciler sets", mode, name)
			}
		}
	}
}

// TestQPEnvTracing: each tracing mode sets its generation's variables, to
// the sink and at the rate, and none of the other generation's.
func TestQPEnvTracing(t *testing.T) {
	for _, tc := range []struct {
		mode         string
		metrics      bool
		want         map[string]string // variables and their values
		absent       []string
		wantTracing  sharedmain.TracingConfig // OBSERVABILITY_CONFIG's, when set
		wantRequests string                   // OBSERVABILITY_CONFIG requestMetrics.protocol
	}{{
		mode: tracingOff, metrics: true,
		want:         map[string]string{"TRACING_CONFIG_BACKEND": "none", "SERVING_REQUEST_METRICS_BACKEND": "prometheus"},
		absent:       []string{"TRACING_CONFIG_ZIPKIN_ENDPOINT", "TRACING_CONFIG_SAMPLE_RATE"},
		wantTracing:  sharedmain.TracingConfig{Protocol: "none"},
		wantRequests: "prometheus",
	}, {
		mode: tracingZipkin, metrics: true,
		want: map[string]string{
			"TRACING_CONFIG_BACKEND":          "zipkin",
			"TRACING_CONFIG_ZIPKIN_ENDPOINT":  "http://127.0.0.1:8/api/v2/spans",
			"TRACING_CONFIG_SAMPLE_RATE":      "0.25",
			"TRACING_CONFIG_DEBUG":            "false",
			"SERVING_REQUEST_METRICS_BACKEND": "prometheus",
		},
		absent: []string{"OBSERVABILITY_CONFIG", "QP_OBSERVABILITY_GENERATION"},
	}, {
		mode: tracingZipkin, metrics: false,
		want:   map[string]string{"TRACING_CONFIG_BACKEND": "zipkin", "SERVING_REQUEST_METRICS_BACKEND": ""},
		absent: []string{"OBSERVABILITY_CONFIG"},
	}, {
		mode: tracingOTLP, metrics: true,
		want:         map[string]string{"TRACING_CONFIG_BACKEND": "none"},
		absent:       []string{"TRACING_CONFIG_ZIPKIN_ENDPOINT", "TRACING_CONFIG_SAMPLE_RATE", "QP_OBSERVABILITY_GENERATION"},
		wantTracing:  sharedmain.TracingConfig{Protocol: "http/protobuf", Endpoint: "http://127.0.0.1:8/v1/traces", SamplingRate: 0.25},
		wantRequests: "prometheus",
	}, {
		mode: tracingOTLP, metrics: false,
		wantTracing:  sharedmain.TracingConfig{Protocol: "http/protobuf", Endpoint: "http://127.0.0.1:8/v1/traces", SamplingRate: 0.25},
		wantRequests: "none",
	}} {
		env := envMap(qpEnv(1, 2, 3, 4, 5, 6, 7, 0, tc.metrics, false, tracing{mode: tc.mode, rate: 0.25, sinkPort: 8}))
		for name, want := range tc.want {
			if got, ok := env[name]; !ok || got != want {
				t.Errorf("tracing %q, metrics %v: %s = %q (set: %v), want %q", tc.mode, tc.metrics, name, got, ok, want)
			}
		}
		for _, name := range tc.absent {
			if v, ok := env[name]; ok {
				t.Errorf("tracing %q, metrics %v: %s=%q is set", tc.mode, tc.metrics, name, v)
			}
		}
		oc, ok := env["OBSERVABILITY_CONFIG"]
		if !ok {
			continue
		}
		cfg, err := sharedmain.ParseObservabilityConfig(oc)
		if err != nil {
			t.Errorf("tracing %q: OBSERVABILITY_CONFIG: %v", tc.mode, err)
			continue
		}
		if cfg.Tracing != tc.wantTracing || cfg.RequestMetrics.Protocol != tc.wantRequests {
			t.Errorf("tracing %q, metrics %v: OBSERVABILITY_CONFIG tracing %+v, requestMetrics %q; want %+v, %q",
				tc.mode, tc.metrics, cfg.Tracing, cfg.RequestMetrics.Protocol, tc.wantTracing, tc.wantRequests)
		}
	}
}

func TestOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		o  options
		ok bool
	}{
		{options{}, true},
		{options{tracing: tracingZipkin, tracingRate: 1, sinkBin: "sink"}, true},
		{options{tracing: tracingOTLP, tracingRate: 0, sinkBin: "sink"}, true},
		{options{tracing: "otlp-grpc", tracingRate: 1, sinkBin: "sink"}, false},
		{options{tracing: tracingOTLP, tracingRate: 1.5, sinkBin: "sink"}, false},
		{options{tracing: tracingOTLP, tracingRate: math.NaN(), sinkBin: "sink"}, false},
		{options{tracing: tracingZipkin, tracingRate: 1}, false},
	} {
		if err := tc.o.check(); (err == nil) != tc.ok {
			t.Errorf("%+v: check() = %v, want ok %v", tc.o, err, tc.ok)
		}
	}
}

// TestHAProxyConfig: the rendered haproxy.cfg has the settings the
// reference row relies on, on the given ports, and nothing that logs.
func TestHAProxyConfig(t *testing.T) {
	cfg := haproxyConfig(18080, 19090)
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"nbthread 1", true},
		{"maxconn 1024", true},
		{"mode http", true},
		{"option http-keep-alive", true},
		{"option forwardfor", true},
		{"http-reuse always", true},
		{"timeout client 60s", true},
		{"timeout server 60s", true},
		{"timeout http-keep-alive 60s", true},
		{"bind 127.0.0.1:18080", true},
		{"server app 127.0.0.1:19090", true},
		{"log global", false},
		{"option httplog", false},
		{"master-worker", false},
		{"daemon", false},
	} {
		found := false
		for line := range strings.Lines(cfg) {
			if strings.TrimSpace(line) == tc.line {
				found = true
			}
		}
		if found != tc.want {
			t.Errorf("line %q present: %v, want %v\n%s", tc.line, found, tc.want, cfg)
		}
	}
}

// TestStartupKindsHAProxy: haproxy is a target only when its binary exists
// and the row is not switched off.
func TestStartupKindsHAProxy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "haproxy")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bin  string
		want bool
	}{
		{bin, true},
		{filepath.Join(t.TempDir(), "haproxy"), false}, // missing
		{"", false}, // HAPROXY=0
	} {
		path, why := haproxyPath(tc.bin)
		got := slices.Contains(startupKinds(path), "haproxy")
		if got != tc.want || (why == "") != tc.want {
			t.Errorf("-haproxy %q: haproxy a target: %v (skipped: %q), want %v", tc.bin, got, why, tc.want)
		}
	}
}

func TestParseHAProxyVersion(t *testing.T) {
	v, err := parseHAProxyVersion("HAProxy version 2.6.12-1+deb12u4 2023/12/16 - https://haproxy.org/\nStatus: long-term supported branch\n")
	if err != nil || v != "2.6.12-1+deb12u4" {
		t.Errorf("parseHAProxyVersion = %q, %v", v, err)
	}
	if _, err := parseHAProxyVersion("usage: haproxy\n"); err == nil {
		t.Error("parseHAProxyVersion accepted output without a version")
	}
}

// TestEnvListFlag checks -qp-env: KEY=VALUE pairs accumulate, anything
// else is refused.
func TestEnvListFlag(t *testing.T) {
	var l envList
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"QP_UPSTREAM_PATH=generic", true},
		{"GOGC=400", true},
		{"EMPTY=", true},
		{"NOEQUALS", false},
		{"=value", false},
	} {
		if err := l.Set(tc.in); (err == nil) != tc.ok {
			t.Errorf("Set(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
	if got, want := l.String(), "QP_UPSTREAM_PATH=generic GOGC=400 EMPTY="; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestReportTargets checks the verdicts of issue 13's load targets on
// synthetic medians: all met, then each target missed alone.
// The CPU target lines add the ratios taken repetition by repetition.
func TestReportPairedCPU(t *testing.T) {
	r := report{results: map[string]map[string][]sample{"16 conns": {
		bareName: {{cpuPer10k: 1}, {cpuPer10k: 2}, {cpuPer10k: 1}},
		qp0Name:  {{cpuPer10k: 0.9}, {cpuPer10k: 1.6}, {cpuPer10k: 1}},
		qp10Name: {{cpuPer10k: 0.7}, {cpuPer10k: 1.8}, {cpuPer10k: 0.8}},
	}}}
	want := "; per repetition, median and range: 0.90× at CC=0 (0.80×–1.00×), 0.80× at CC=10 (0.70×–0.90×)"
	if got := r.pairedCPU("16 conns"); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	r.results["16 conns"][qp0Name] = r.results["16 conns"][qp0Name][:1]
	if got := r.pairedCPU("16 conns"); got != "" {
		t.Errorf("one repetition: got %q, want nothing", got)
	}
}

// The CPU target lines add the ratios of the concurrent pairs.
func TestReportConcurrentCPU(t *testing.T) {
	r := report{o: options{pairDuration: 4 * time.Second}, concurrent: map[string]map[string][]float64{"16 conns": {
		qp0Name:  {0.85, 0.80, 0.90},
		qp10Name: {0.95, 0.88, 0.91},
	}}}
	want := "; driven at the same time as the bare proxy (3 pairs of 4s), median and range: 0.85× at CC=0 (0.80×–0.90×), 0.91× at CC=10 (0.88×–0.95×)"
	if got := r.concurrentCPU("16 conns"); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := r.concurrentCPU("64 conns"); got != "" {
		t.Errorf("no pairs: got %q, want nothing", got)
	}
}

func TestReportTargets(t *testing.T) {
	const ms = time.Millisecond
	// good is a cell meeting every target: queue-proxy at 0.75× the bare
	// proxy's CPU and 1.25× its throughput; tails within bounds.
	good := func(load, target string) sample {
		s := sample{wrkResult: wrkResult{requests: 1000, rps: 1000, p50: 10 * ms, p90: 11 * ms, p99: 11 * ms}, cpuPer10k: 1}
		if target == qp0Name || target == qp10Name {
			s.rps, s.cpuPer10k = 1250, 0.75
		}
		return s
	}
	cases := []struct {
		name    string
		tweak   func(load, target string, s *sample)
		missing string // the target line that must say MISSED; "" = none
	}{
		{name: "all met", tweak: func(string, string, *sample) {}},
		{name: "CPU at CC=10 paced", missing: "CPU per request, 16 conns, 5 ms pause", tweak: func(l, tg string, s *sample) {
			if l == "16 conns, 5 ms pause" && tg == qp10Name {
				s.cpuPer10k = 0.81
			}
		}},
		{name: "throughput at 64 conns", missing: "throughput", tweak: func(l, tg string, s *sample) {
			if l == "64 conns" && tg == qp0Name {
				s.rps = 1100
			}
		}},
		{name: "CC=10 tail at 64 conns", missing: "CC=10 at 64 conns", tweak: func(l, tg string, s *sample) {
			if l == "64 conns" && tg == qp10Name {
				s.p99 = 21 * ms
			}
		}},
		{name: "sleep queue unfair", missing: "CC=10, " + sleepLoadName, tweak: func(l, tg string, s *sample) {
			if l == sleepLoadName && tg == qp10Name {
				s.p99 = 13 * ms
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := report{o: options{reps: 1}, loads: loads, results: map[string]map[string][]sample{},
				startup: map[string]time.Duration{}, idle: map[string]int64{}, peak: map[string]int64{}, sizes: map[string]int64{}}
			for _, l := range loads {
				r.results[l.name] = map[string][]sample{}
				for _, tg := range []string{bareName, qp0Name, qp10Name} {
					s := good(l.name, tg)
					tc.tweak(l.name, tg, &s)
					r.results[l.name][tg] = []sample{s}
				}
			}
			var lines []string
			r.loadTargets(func(ok bool, format string, args ...any) {
				if !ok {
					lines = append(lines, fmt.Sprintf(format, args...))
				}
			})
			switch {
			case tc.missing == "" && len(lines) > 0:
				t.Errorf("missed %q, want all met", lines)
			case tc.missing != "" && (len(lines) != 1 || !strings.HasPrefix(lines[0], tc.missing)):
				t.Errorf("missed %q, want only %q", lines, tc.missing)
			}
		})
	}
}
