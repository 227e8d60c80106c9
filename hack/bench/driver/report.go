package main

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Targets checked against the medians: the load's from issue 13, idle
// RSS and startup from issue 6.
const (
	maxCPURatio       = 0.80 // queue-proxy CPU/request ÷ bare, 16 conns and paced, CC=0 and CC=10
	minRPSRatio       = 1.20 // queue-proxy CC=0 req/s ÷ bare, 16 and 64 conns
	maxTailRatio      = 2.0  // CC=10, 64 conns: p99 ÷ p50
	maxSleepTailRatio = 1.2  // CC=10, /sleep?ms=20: p99 ÷ p50
	maxPeakRSS        = 18 << 20
	maxIdleRSS        = 10 << 20
	maxStartupRatio   = 1.3 // queue-proxy ÷ bare
	bareName          = "bare proxy"
	qp0Name, qp10Name = "queue-proxy CC=0", "queue-proxy CC=10"
)

// report renders the benchmark's results as Markdown.
type report struct {
	o       options
	loads   []load
	targets []*target
	results map[string]map[string][]sample // load -> target -> samples
	// concurrent is queue-proxy's CPU per request over the bare proxy's,
	// both driven at the same time, pair by pair: load -> target -> ratios.
	concurrent map[string]map[string][]float64
	startup    map[string]time.Duration // "direct", "bare", "qp"
	idle, peak map[string]int64         // target name -> bytes
	sizes      map[string]int64         // "bare", "qp" -> bytes
	elapsed    time.Duration
	loadavg    [2]string   // /proc/loadavg before and after
	sink       *sinkReport // nil without tracing
	haproxy    haproxyInfo
}

// sinkReport is what the spans sink received: before the warm-up (from the
// startup measurements and idle probes) and at the end, and the requests
// wrk sent to the tracing queue-proxies in between.
type sinkReport struct {
	before, after sinkStats
	requests      int64
	cpu           float64 // the sink's CPU-seconds, taken from the load CPU
}

// tracingTitle names the tracing mode and rate, for the report's title.
func tracingTitle(o options) string {
	if o.tracing == tracingOff {
		return "tracing off"
	}
	return fmt.Sprintf("tracing %s, sampling rate %g", o.tracing, o.tracingRate)
}

// tracingSetup says how queue-proxy was told to trace.
func tracingSetup(o options) string {
	switch o.tracing {
	case tracingZipkin:
		return fmt.Sprintf("queue-proxy traces as Knative 1.15 sets it up (TRACING_CONFIG_BACKEND=zipkin, TRACING_CONFIG_SAMPLE_RATE=%g, no OBSERVABILITY_CONFIG: the 1.15 generation, request metrics included) to a spans sink on CPU %s; the bare proxy does not trace", o.tracingRate, o.loadCPU)
	case tracingOTLP:
		return fmt.Sprintf("queue-proxy traces as the newest Knative sets it up (OBSERVABILITY_CONFIG tracing: http/protobuf, samplingRate %g) to a spans sink on CPU %s; the bare proxy does not trace", o.tracingRate, o.loadCPU)
	}
	return "tracing off"
}

// String renders the sink's counts: totals, and per request during the
// load runs.
func (s *sinkReport) String() string {
	a := s.after
	text := fmt.Sprintf("Spans sink: %d posts, %d bytes, %d spans (%d rejected as malformed), in all, using %.1f CPU-seconds on the load CPU",
		a.Posts, a.Bytes, a.Spans, a.Errors, s.cpu)
	if s.requests == 0 {
		return text + ".\n"
	}
	n := float64(s.requests)
	return text + fmt.Sprintf("; during the load runs (warm-up included) %.2f spans and %.0f bytes per request to queue-proxy, over %d requests.\n",
		float64(a.Spans-s.before.Spans)/n, float64(a.Bytes-s.before.Bytes)/n, s.requests)
}

// med is the per-figure median of a cell's samples.
type med struct {
	rps, cpu      float64
	p50, p90, p99 time.Duration
	errors        int64 // total over all samples
	n             int
}

func (r *report) median(loadName, targetName string) med {
	ss := r.results[loadName][targetName]
	m := med{n: len(ss)}
	var rps, cpu []float64
	var p50, p90, p99 []time.Duration
	for _, s := range ss {
		rps = append(rps, s.rps)
		cpu = append(cpu, s.cpuPer10k)
		p50, p90, p99 = append(p50, s.p50), append(p90, s.p90), append(p99, s.p99)
		m.errors += s.socketErrors + s.non2xx3xx
	}
	m.rps, m.cpu = median(rps), median(cpu)
	m.p50, m.p90, m.p99 = median(p50), median(p90), median(p99)
	return m
}

func (r *report) String() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# queue-proxy whole-process benchmark (%s)\n\n", tracingTitle(r.o))
	w("%s, %d CPUs, %s; load average %s before, %s after. Proxies pinned to CPU %s, wrk (1 thread, HTTP/1.1 keep-alive) and the backend to CPU %s. ",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(), r.loadavg[0], r.loadavg[1], r.o.proxyCPU, r.o.loadCPU)
	w("%d × %v per cell, targets in rotating order, medians shown; request metrics %s; %s; %s; took %v.\n\n",
		r.o.reps, r.o.duration, onOff(r.o.metrics), tracingSetup(r.o), r.haproxy, r.elapsed.Round(time.Second))
	if len(r.o.qpEnv) > 0 {
		w("queue-proxy's environment adds %s.\n\n", strings.Join(r.o.qpEnv, " "))
	}
	if r.sink != nil {
		w("%s\n", r.sink)
	}

	w("| load | target | req/s | p50 | p90 | p99 | proxy CPU s / 10k req | errors |\n")
	w("|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, l := range r.loads {
		for _, tg := range r.targets {
			m := r.median(l.name, tg.name)
			w("| %s | %s | %.0f | %s | %s | %s | %s | %d |\n", l.name, tg.name, m.rps,
				fmtDur(m.p50), fmtDur(m.p90), fmtDur(m.p99), fmtCPU(m.cpu), m.errors)
		}
	}

	w("\nRatios to the bare proxy (req/s: higher is better; the rest: lower is better):\n\n")
	w("| load | target | req/s | p50 | p99 | CPU / request |\n")
	w("|---|---|--:|--:|--:|--:|\n")
	for _, l := range r.loads {
		bare := r.median(l.name, bareName)
		for _, tg := range r.targets {
			if tg.name == bareName {
				continue
			}
			m := r.median(l.name, tg.name)
			w("| %s | %s | %s | %s | %s | %s |\n", l.name, tg.name,
				fmtRatio(m.rps/bare.rps), fmtRatio(float64(m.p50)/float64(bare.p50)),
				fmtRatio(float64(m.p99)/float64(bare.p99)), fmtRatio(m.cpu/bare.cpu))
		}
	}

	w("\n| process | exec → first 200 (activator probe, median of %d) | idle RSS | peak RSS | stripped binary |\n", r.o.startupReps)
	w("|---|--:|--:|--:|--:|\n")
	w("| backend (direct) | %s | | | |\n", fmtDur(r.startup["direct"]))
	w("| bare proxy | %s | %s | %s | %s |\n", fmtDur(r.startup["bare"]), mib(r.idle[bareName]), mib(r.peak[bareName]), mib(r.sizes["bare"]))
	if r.haproxy.version != "" {
		w("| HAProxy | %s | %s | %s | (dynamically linked) |\n", fmtDur(r.startup["haproxy"]), mib(r.idle[haproxyName]), mib(r.peak[haproxyName]))
	}
	w("| queue-proxy CC=0 | %s | %s | %s | %s |\n", fmtDur(r.startup["qp"]), mib(r.idle[qp0Name]), mib(r.peak[qp0Name]), mib(r.sizes["qp"]))
	w("| queue-proxy CC=10 | | %s | %s | |\n", mib(r.idle[qp10Name]), mib(r.peak[qp10Name]))
	w("| queue-proxy ÷ bare | %s | %s | %s | %s |\n",
		fmtRatio(float64(r.startup["qp"])/float64(r.startup["bare"])),
		fmtRatio(float64(r.idle[qp0Name])/float64(r.idle[bareName])),
		fmtRatio(float64(r.peak[qp0Name])/float64(r.peak[bareName])),
		fmtRatio(float64(r.sizes["qp"])/float64(r.sizes["bare"])))

	noProbes := "The bare proxy serves no probes: its"
	if r.haproxy.version != "" {
		noProbes = "The bare proxy and HAProxy serve no probes: their"
	}
	w("\n%s exec → first 200 is the first probe proxied to the backend that comes back 200.\n", noProbes)

	w("\nTargets (issues 13 and 6")
	if r.o.tracing != tracingOff {
		w("; set for queue-proxy without tracing")
	}
	w("):\n\n")
	check := func(ok bool, format string, args ...any) {
		verdict := "MISSED"
		if ok {
			verdict = "met"
		}
		w("- %s: "+format+"\n", append([]any{verdict}, args...)...)
	}
	if r.o.reps == 0 {
		w("- not measured (REPS=0): CPU per request, throughput, CC=10 tail\n")
	} else {
		r.loadTargets(check)
	}
	check(r.peak[qp0Name] <= maxPeakRSS && r.peak[qp10Name] <= maxPeakRSS, "peak RSS under load %s at CC=0, %s at CC=10 (target ≤ %s)", mib(r.peak[qp0Name]), mib(r.peak[qp10Name]), mib(maxPeakRSS))
	check(r.idle[qp0Name] <= maxIdleRSS, "idle RSS %s (target ≤ %s)", mib(r.idle[qp0Name]), mib(maxIdleRSS))
	su := float64(r.startup["qp"]) / float64(r.startup["bare"])
	check(su <= maxStartupRatio, "startup %s = %s the bare proxy's %s (target ≤ %.1f×)", fmtDur(r.startup["qp"]), fmtRatio(su), fmtDur(r.startup["bare"]), maxStartupRatio)
	return b.String()
}

// loadTargets checks the targets that need wrk runs.
func (r *report) loadTargets(check func(bool, string, ...any)) {
	c16, c64, paced := r.loads[0].name, r.loads[1].name, r.loads[2].name
	for _, l := range []string{c16, paced} {
		bare := r.median(l, bareName)
		q0, q10 := r.median(l, qp0Name).cpu/bare.cpu, r.median(l, qp10Name).cpu/bare.cpu
		check(q0 <= maxCPURatio && q10 <= maxCPURatio, "CPU per request, %s: %s the bare proxy at CC=0, %s at CC=10 (target ≤ %.2f×)%s%s",
			l, fmtRatio(q0), fmtRatio(q10), maxCPURatio, r.pairedCPU(l), r.concurrentCPU(l))
	}
	b16, q16 := r.median(c16, bareName), r.median(c16, qp0Name)
	b64, q64 := r.median(c64, bareName), r.median(c64, qp0Name)
	r16, r64 := q16.rps/b16.rps, q64.rps/b64.rps
	check(r16 >= minRPSRatio && r64 >= minRPSRatio, "throughput, CC=0: %s the bare proxy at 16 conns, %s at 64 (target ≥ %.2f×)", fmtRatio(r16), fmtRatio(r64), minRPSRatio)
	cc10 := r.median(c64, qp10Name)
	tail := float64(cc10.p99) / float64(cc10.p50)
	check(tail <= maxTailRatio, "CC=10 at 64 conns: p99 %s = %.1f× p50 %s (target ≤ %.0f×)", fmtDur(cc10.p99), tail, fmtDur(cc10.p50), maxTailRatio)
	sleep := r.median(sleepLoadName, qp10Name)
	tail = float64(sleep.p99) / float64(sleep.p50)
	check(tail <= maxSleepTailRatio, "CC=10, %s: p99 %s = %.2f× p50 %s (target ≤ %.1f×)", sleepLoadName, fmtDur(sleep.p99), tail, fmtDur(sleep.p50), maxSleepTailRatio)
}

// pairedCPU describes, for information, the CPU ratios to the bare proxy
// taken repetition by repetition (each repetition runs every target once,
// close together in time): their median and range at CC=0 and CC=10. On a
// machine whose speed drifts between repetitions they spread less than
// the medians' ratio suggests. "" with fewer than two repetitions.
func (r *report) pairedCPU(l string) string {
	var parts []string
	for _, tg := range []string{qp0Name, qp10Name} {
		bare, qp := r.results[l][bareName], r.results[l][tg]
		var ratios []float64
		for i := range min(len(bare), len(qp)) {
			if bare[i].cpuPer10k > 0 {
				ratios = append(ratios, qp[i].cpuPer10k/bare[i].cpuPer10k)
			}
		}
		if len(ratios) < 2 {
			return ""
		}
		parts = append(parts, fmt.Sprintf("%s at %s (%s–%s)", fmtRatio(median(ratios)), strings.TrimPrefix(tg, "queue-proxy "),
			fmtRatio(slices.Min(ratios)), fmtRatio(slices.Max(ratios))))
	}
	return "; per repetition, median and range: " + strings.Join(parts, ", ")
}

// concurrentCPU describes, for information, the CPU ratios to the bare
// proxy measured with both driven at the same time (bench.concurrentPairs):
// median and range at CC=0 and CC=10. "" when none were measured.
func (r *report) concurrentCPU(l string) string {
	var parts []string
	n := 0
	for _, tg := range []string{qp0Name, qp10Name} {
		ratios := r.concurrent[l][tg]
		if len(ratios) == 0 {
			return ""
		}
		n = len(ratios)
		parts = append(parts, fmt.Sprintf("%s at %s (%s–%s)", fmtRatio(median(ratios)), strings.TrimPrefix(tg, "queue-proxy "),
			fmtRatio(slices.Min(ratios)), fmtRatio(slices.Max(ratios))))
	}
	return fmt.Sprintf("; driven at the same time as the bare proxy (%d pairs of %v), median and range: %s",
		n, r.o.pairDuration, strings.Join(parts, ", "))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// number is what median works on.
type number interface{ ~int64 | ~float64 }

// median returns the median of xs (the mean of the middle two for an even
// count), ignoring NaNs; NaN (or 0 for integers) if none are left.
func median[T number](xs []T) T {
	var v []T
	for _, x := range xs {
		if x == x { // not NaN
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		var zero T
		if f, ok := any(&zero).(*float64); ok {
			*f = math.NaN()
		}
		return zero
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return v[n/2-1] + (v[n/2]-v[n/2-1])/2
}

func nan() float64 { return math.NaN() }

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func fmtCPU(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.3f", v)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

func mib(n int64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
