package main

import (
	"math"
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

// TestQPEnvHasTheReconcilers: the benchmark runs queue-proxy with every
// variable Knative's reconciler sets, so that it drifts with neither.
func TestQPEnvHasTheReconcilers(t *testing.T) {
	set := map[string]bool{}
	for _, kv := range qpEnv(1, 2, 3, 4, 5, 6, 7, 0, true, false) {
		name, _, _ := strings.Cut(kv, "=")
		set[name] = true
	}
	for _, name := range sharedmain.ReconcilerEnv() {
		if !set[name] {
			t.Errorf("qpEnv lacks %s, which the reconciler sets", name)
		}
	}
}
