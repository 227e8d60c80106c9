// Command driver runs the whole-process benchmark (hack/bench/run.sh, `make
// bench`). It starts the backend (a 2-byte HTTP/1.1 server), the bare
// reverse proxy and queue-proxy (CONTAINER_CONCURRENCY 0 and 10) in front of
// it, and drives each with wrk: 1 thread, HTTP/1.1 keep-alive, 16 and 64
// connections, a paced load of 16 connections pausing 5 ms between
// requests, and 16 connections to a backend path that answers after 20 ms
// (which queues behind CC=10). The proxies are pinned to one CPU, wrk and the backend to
// another. Runs are repeated with the targets in rotating order and the
// medians are reported, with ratios to the bare proxy, as a Markdown table.
//
// HAProxy (one thread, keep-alive both ways), when installed, runs as a
// reference row beside the bare proxy, pinned to the same CPU.
//
// It also measures, from /proc, each proxy's CPU time per 10k requests and
// its idle and peak RSS, and the time from exec to the first 200 answer to
// an activator probe.
//
// With -tracing, queue-proxy also traces, as either Knative generation
// configures it, and exports its spans to a sink (hack/bench/spansink) that
// runs on the load CPU and counts what it receives; the bare proxy never
// traces, so it stays the reference.
//
// `driver scale` runs the scale benchmark instead (scale.go, `make
// bench-scale`).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	qpBin, backendBin, bareBin string
	wrkBin, pacedScript        string
	outDir                     string
	duration, warmup           time.Duration
	reps, startupReps          int
	proxyCPU, loadCPU          string
	metrics                    bool
	profile                    time.Duration
	tracing                    string  // tracingOff, tracingZipkin or tracingOTLP
	tracingRate                float64 // sampling rate
	sinkBin                    string
	haproxyBin                 string        // "" skips the HAProxy row
	qpEnv                      envList       // extra KEY=VALUE for queue-proxy (-qp-env)
	pairs                      int           // concurrent pairs per load and CC (-pairs)
	pairDuration               time.Duration // length of one concurrent pair
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (l *envList) String() string { return strings.Join(*l, " ") }

func (l *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*l = append(*l, v)
	return nil
}

// Tracing modes (-tracing).
const (
	tracingOff    = ""
	tracingZipkin = "zipkin" // Knative 1.15: TRACING_CONFIG_*, no OBSERVABILITY_CONFIG
	tracingOTLP   = "otlp"   // newest Knative: OBSERVABILITY_CONFIG tracing, http/protobuf
)

// spanFlushWait is how long the driver waits after the load runs before
// reading the sink's counts, so that the spans queue-proxy still batches
// reach it: its Zipkin reporter posts every second, its OTLP batch span
// processor every 5 s (OTEL_BSP_SCHEDULE_DELAY's default).
const spanFlushWait = 6 * time.Second

func main() {
	if len(os.Args) > 1 && os.Args[1] == "scale" {
		os.Exit(scaleMain(os.Args[2:])) // scale.go: `make bench-scale`
	}
	var o options
	flag.StringVar(&o.qpBin, "qp", "bin/queue-proxy", "queue-proxy binary (stripped, as `make build` makes it)")
	flag.StringVar(&o.backendBin, "backend", "", "backend binary (hack/bench/backend)")
	flag.StringVar(&o.bareBin, "bare", "", "bare proxy binary (hack/bench/bareproxy, stripped)")
	flag.StringVar(&o.wrkBin, "wrk", "wrk", "wrk binary")
	flag.StringVar(&o.pacedScript, "paced-script", "hack/bench/paced.lua", "wrk Lua script that pauses between requests")
	flag.StringVar(&o.outDir, "out", "out/bench", "directory for logs, raw wrk output and the report")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one wrk run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "wrk warm-up per target before measuring")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of every (load, target) run; 0 measures only startup, RSS and size")
	flag.IntVar(&o.startupReps, "startup-reps", 15, "process starts measured per target")
	flag.StringVar(&o.proxyCPU, "proxy-cpu", "0", "CPU list (taskset) for the proxies")
	flag.StringVar(&o.loadCPU, "load-cpu", "1", "CPU list (taskset) for wrk and the backend")
	flag.BoolVar(&o.metrics, "metrics", true, "run queue-proxy with request metrics on (prometheus)")
	flag.DurationVar(&o.profile, "profile", 0, "if > 0, also CPU-profile queue-proxy (CC=0, 16 conns) for this long and print the top costs")
	flag.StringVar(&o.tracing, "tracing", tracingOff, `queue-proxy tracing: "" (off), "zipkin" (Knative 1.15's TRACING_CONFIG_*, 1.15 generation) or "otlp" (newest generation, OBSERVABILITY_CONFIG, http/protobuf)`)
	flag.Float64Var(&o.tracingRate, "tracing-rate", 1, "sampling rate of -tracing, 0 to 1")
	flag.StringVar(&o.sinkBin, "sink", "", "spans sink binary (hack/bench/spansink); needed with -tracing")
	flag.StringVar(&o.haproxyBin, "haproxy", "haproxy", `HAProxy binary for the reference row; skipped if "" or not found`)
	flag.IntVar(&o.pairs, "pairs", 6, "after the repetitions, runs per load (16 conns, paced) and CC of the bare proxy and queue-proxy driven at the same time, for the CPU ratio (0: none)")
	flag.DurationVar(&o.pairDuration, "pair-duration", 4*time.Second, "length of one concurrent pair")
	flag.Var(&o.qpEnv, "qp-env", "KEY=VALUE added to queue-proxy's environment, after (so over) the bench's own; repeatable (e.g. QP_UPSTREAM_PATH=generic, GOGC=400)")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o}
	err := b.run(ctx)
	b.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// check rejects settings the benchmark cannot run with.
func (o *options) check() error {
	switch o.tracing {
	case tracingOff:
		return nil
	case tracingZipkin, tracingOTLP:
	default:
		return fmt.Errorf("-tracing %q is not %q, %q or %q", o.tracing, tracingOff, tracingZipkin, tracingOTLP)
	}
	if !(o.tracingRate >= 0 && o.tracingRate <= 1) {
		return fmt.Errorf("-tracing-rate %v is not between 0 and 1", o.tracingRate)
	}
	if o.sinkBin == "" {
		return errors.New("-tracing needs -sink, the spans sink binary")
	}
	return nil
}

// load is one way of driving a target.
type load struct {
	name  string
	conns int
	paced bool   // 5 ms pause between a response and the next request
	path  string // request path and query; "" is "/"
}

// sleepLoadName is the load whose backend answers after 20 ms: 16
// connections behind CC=10 queue 6 requests, so it shows whether the
// queue is fair (every request waits about as long: p99 near p50).
const sleepLoadName = "16 conns, /sleep?ms=20"

var loads = []load{
	{"16 conns", 16, false, ""},
	{"64 conns", 64, false, ""},
	{"16 conns, 5 ms pause", 16, true, ""},
	{sleepLoadName, 16, false, "/sleep?ms=20"},
}

// target is a server wrk drives.
type target struct {
	name string
	port int
	proc *child // the proxy whose CPU and memory are measured; nil for direct
}

// sample is one wrk run's figures.
type sample struct {
	wrkResult
	cpuPer10k float64 // proxy CPU-seconds per 10k requests; NaN if not measured
}

type bench struct {
	o        options
	children []*child
	mu       sync.Mutex // raw and tracedRequests, written by concurrent runs
	raw      *os.File
	sink     *child // the spans sink; nil without tracing
	// tracedRequests counts the requests wrk sent to tracing queue-proxies.
	tracedRequests int64
	// haproxy is HAProxy's path, "" when its row is skipped.
	haproxy string
}

func (b *bench) run(ctx context.Context) error {
	if err := os.MkdirAll(b.o.outDir, 0o755); err != nil {
		return err
	}
	raw, err := os.Create(filepath.Join(b.o.outDir, "wrk-raw.txt"))
	if err != nil {
		return err
	}
	defer raw.Close()
	b.raw = raw
	started, loadBefore := time.Now(), loadavg()

	if b.o.tracing != tracingOff {
		// Before any queue-proxy starts, as each one exports to it.
		if b.sink, err = b.startSink(); err != nil {
			return err
		}
	}

	hap := haproxyInfo{}
	if b.haproxy, hap.skipped = haproxyPath(b.o.haproxyBin); b.haproxy != "" {
		if hap.version, err = haproxyVersion(b.haproxy); err != nil {
			return err
		}
	} else {
		logf("no HAProxy row: %s", hap.skipped)
	}

	// Startup times first, while nothing else of ours runs.
	logf("measuring startup (%d starts per target)", b.o.startupReps)
	startup := map[string]time.Duration{}
	for _, kind := range startupKinds(b.haproxy) {
		d, err := b.startupTime(ctx, kind)
		if err != nil {
			return fmt.Errorf("startup of %s: %w", kind, err)
		}
		startup[kind] = d
	}

	backend, err := b.startBackend()
	if err != nil {
		return err
	}
	bare, err := b.startBare(backend.port)
	if err != nil {
		return err
	}
	qp0, err := b.startQP(backend.port, 0, false)
	if err != nil {
		return err
	}
	qp10, err := b.startQP(backend.port, 10, false)
	if err != nil {
		return err
	}
	targets := []*target{
		{"direct", backend.port, nil},
		{bareName, bare.port, bare},
		{qp0Name, qp0.port, qp0},
		{qp10Name, qp10.port, qp10},
	}
	if b.haproxy != "" {
		hp, err := b.startHAProxy(backend.port)
		if err != nil {
			return err
		}
		targets = append(targets, &target{haproxyName, hp.port, hp})
	}
	proxies := targets[1:] // the targets whose process is measured

	// Idle RSS: started, answered a few probes as kubelet would, settled.
	for _, tg := range proxies {
		for range 5 {
			if _, err := probe(tg.port); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
		}
	}
	time.Sleep(2 * time.Second)
	idle := map[string]int64{}
	for _, tg := range proxies {
		rss, _, err := memory(tg.proc.cmd.Process.Pid)
		if err != nil {
			return err
		}
		idle[tg.name] = rss
	}

	var sinkBefore sinkStats // what startup and idle probes exported
	if b.sink != nil {
		if sinkBefore, err = b.sinkStats(); err != nil {
			return err
		}
	}

	logf("warming up")
	for _, tg := range targets {
		if b.o.reps == 0 {
			break // process figures only
		}
		if _, err := b.runWrk(ctx, tg, load{"warm-up", 64, false, ""}, b.o.warmup); err != nil {
			return fmt.Errorf("warm-up of %s: %w", tg.name, err)
		}
	}

	results := map[string]map[string][]sample{} // load -> target -> samples
	for rep := range b.o.reps {
		for _, l := range loads {
			if results[l.name] == nil {
				results[l.name] = map[string][]sample{}
			}
			for i := range targets {
				tg := targets[(i+rep)%len(targets)] // rotate the order per repetition
				if err := ctx.Err(); err != nil {
					return err
				}
				s, err := b.runWrk(ctx, tg, l, b.o.duration)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", tg.name, l.name, err)
				}
				results[l.name][tg.name] = append(results[l.name][tg.name], s)
				logf("rep %d/%d  %-22s %-18s %9.0f req/s  p50 %-9v p99 %-9v cpu %s s/10k  errors %d",
					rep+1, b.o.reps, l.name, tg.name, s.rps, s.p50, s.p99, fmtCPU(s.cpuPer10k), s.socketErrors+s.non2xx3xx)
			}
		}
	}

	peak := map[string]int64{}
	for _, tg := range proxies {
		_, p, err := memory(tg.proc.cmd.Process.Pid)
		if err != nil {
			return err
		}
		peak[tg.name] = p
	}
	concurrent := map[string]map[string][]float64{}
	if b.o.reps > 0 {
		if concurrent, err = b.concurrentPairs(ctx, targets); err != nil {
			return err
		}
	}
	var sink *sinkReport
	if b.sink != nil {
		logf("waiting %v for queue-proxy to export its last spans", spanFlushWait)
		time.Sleep(spanFlushWait)
		after, err := b.sinkStats()
		if err != nil {
			return err
		}
		cpu, err := cpuSeconds(b.sink.cmd.Process.Pid)
		if err != nil {
			return err
		}
		sink = &sinkReport{before: sinkBefore, after: after, requests: b.tracedRequests, cpu: cpu}
	}
	sizes := map[string]int64{}
	for name, path := range map[string]string{"bare": b.o.bareBin, "qp": b.o.qpBin} {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		sizes[name] = fi.Size()
	}

	rep := report{
		o: b.o, loads: loads, targets: targets, results: results, startup: startup,
		idle: idle, peak: peak, concurrent: concurrent,
		sizes: sizes, elapsed: time.Since(started), loadavg: [2]string{loadBefore, loadavg()},
		sink: sink, haproxy: hap,
	}
	text := rep.String()
	fmt.Print(text)
	if err := os.WriteFile(filepath.Join(b.o.outDir, "results.md"), []byte(text), 0o644); err != nil {
		return err
	}

	if b.o.profile > 0 {
		return b.profileQP(ctx, backend.port)
	}
	return nil
}

// concurrentPairs drives the bare proxy and queue-proxy (CC=0, then
// CC=10) at the same time, each with its own wrk, o.pairs times per CPU
// target load, and returns queue-proxy's CPU per request over the bare
// proxy's, pair by pair (load -> target -> ratios). Both proxies share the
// proxy CPU and both clients the load CPU, so whatever the machine does
// meanwhile (other tenants, frequency) weighs on both alike: the ratios
// spread far less than those of runs taken one after the other.
func (b *bench) concurrentPairs(ctx context.Context, targets []*target) (map[string]map[string][]float64, error) {
	out := map[string]map[string][]float64{}
	if b.o.pairs <= 0 {
		return out, nil
	}
	byName := map[string]*target{}
	for _, tg := range targets {
		byName[tg.name] = tg
	}
	for _, l := range []load{loads[0], loads[2]} { // the CPU targets' loads (report.loadTargets)
		out[l.name] = map[string][]float64{}
		for i := range b.o.pairs {
			for _, name := range []string{qp0Name, qp10Name} {
				var bare, qp sample
				var errBare, errQP error
				var wg sync.WaitGroup
				wg.Go(func() { bare, errBare = b.runWrk(ctx, byName[bareName], l, b.o.pairDuration) })
				wg.Go(func() { qp, errQP = b.runWrk(ctx, byName[name], l, b.o.pairDuration) })
				wg.Wait()
				if err := errors.Join(errBare, errQP); err != nil {
					return nil, fmt.Errorf("concurrent pair, %s, %s: %w", name, l.name, err)
				}
				if bare.cpuPer10k > 0 {
					out[l.name][name] = append(out[l.name][name], qp.cpuPer10k/bare.cpuPer10k)
				}
				logf("pair %d/%d  %-22s bare %s, %s %s s/10k", i+1, b.o.pairs, l.name,
					fmtCPU(bare.cpuPer10k), name, fmtCPU(qp.cpuPer10k))
			}
		}
	}
	return out, nil
}

// runWrk drives tg with l for d and measures the proxy's CPU time.
func (b *bench) runWrk(ctx context.Context, tg *target, l load, d time.Duration) (sample, error) {
	args := []string{"-c", b.o.loadCPU, b.o.wrkBin, "-t1", "-c" + strconv.Itoa(l.conns),
		"-d" + strconv.Itoa(int(d.Round(time.Second).Seconds())) + "s", "--latency", "--timeout", "10s"}
	if l.paced {
		args = append(args, "-s", b.o.pacedScript)
	}
	path := l.path
	if path == "" {
		path = "/"
	}
	args = append(args, fmt.Sprintf("http://127.0.0.1:%d%s", tg.port, path))

	var cpu0 float64
	if tg.proc != nil {
		var err error
		if cpu0, err = cpuSeconds(tg.proc.cmd.Process.Pid); err != nil {
			return sample{}, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(wctx, "taskset", args...).CombinedOutput()
	b.mu.Lock()
	fmt.Fprintf(b.raw, "### %s | %s | %s\n%s\n", time.Now().Format(time.RFC3339), tg.name, l.name, out)
	b.mu.Unlock()
	if err != nil {
		return sample{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	s := sample{cpuPer10k: nan()}
	if s.wrkResult, err = parseWrk(string(out)); err != nil {
		return sample{}, fmt.Errorf("%v\n%s", err, out)
	}
	if tg.proc != nil {
		cpu1, err := cpuSeconds(tg.proc.cmd.Process.Pid)
		if err != nil {
			return sample{}, err
		}
		if s.requests > 0 {
			s.cpuPer10k = (cpu1 - cpu0) / float64(s.requests) * 1e4
		}
		if tg.proc.traced {
			b.mu.Lock()
			b.tracedRequests += s.requests
			b.mu.Unlock()
		}
	}
	return s, nil
}

// startupTime is the median time from exec to the first 200 answer to an
// activator probe, over startupReps fresh processes. The bare proxy and
// HAProxy serve no probes: theirs is the first probe proxied to the
// backend that comes back 200.
func (b *bench) startupTime(ctx context.Context, kind string) (time.Duration, error) {
	var backendPort int
	if kind != "direct" {
		be, err := b.startBackend()
		if err != nil {
			return 0, err
		}
		defer be.stop()
		backendPort = be.port
	}
	var ds []time.Duration
	for range b.o.startupReps {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var c *child
		var err error
		switch kind {
		case "direct":
			c, err = b.launchBackend()
		case "bare":
			c, err = b.launchBare(backendPort)
		case "haproxy":
			c, err = b.launchHAProxy(backendPort)
		default:
			c, err = b.launchQP(backendPort, 0, false)
		}
		if err != nil {
			return 0, err
		}
		d, err := waitOK(c, 10*time.Second)
		c.stop()
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	return median(ds), nil
}

// profileQP runs queue-proxy with profiling on under 16 connections and
// prints the top CPU and allocation costs.
func (b *bench) profileQP(ctx context.Context, backendPort int) error {
	qp, err := b.startQP(backendPort, 0, true)
	if err != nil {
		return err
	}
	tg := &target{"queue-proxy CC=0 (profiling)", qp.port, qp}
	if _, err := b.runWrk(ctx, tg, load{"warm-up", 16, false, ""}, b.o.warmup); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.runWrk(ctx, tg, load{"16 conns", 16, false, ""}, b.o.profile+3*time.Second)
		done <- err
	}()
	time.Sleep(time.Second)
	cpuPath := filepath.Join(b.o.outDir, "cpu.pprof")
	secs := strconv.Itoa(int(b.o.profile.Seconds()))
	if err := download(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%s", qp.profilingPort, secs), cpuPath, b.o.profile+30*time.Second); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	allocPath := filepath.Join(b.o.outDir, "allocs.pprof")
	if err := download(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/allocs", qp.profilingPort), allocPath, 30*time.Second); err != nil {
		return err
	}
	fmt.Printf("\n## Profiles (queue-proxy CC=0, 16 conns)\n\nSaved %s and %s.\n", cpuPath, allocPath)
	for _, p := range []struct{ title, path, index string }{
		{"CPU", cpuPath, ""},
		{"allocated bytes", allocPath, "-sample_index=alloc_space"},
	} {
		args := []string{"tool", "pprof", "-top", "-nodecount=30"}
		if p.index != "" {
			args = append(args, p.index)
		}
		out, err := exec.CommandContext(ctx, "go", append(args, p.path)...).CombinedOutput()
		if err != nil {
			fmt.Printf("\n(go tool pprof failed: %v; run `go tool pprof -top %s` yourself)\n", err, p.path)
			continue
		}
		fmt.Printf("\n### Top %s\n\n```\n%s```\n", p.title, out)
	}
	return nil
}

// child is a process the benchmark started.
type child struct {
	name          string
	cmd           *exec.Cmd
	port          int // the port traffic goes to
	profilingPort int
	probeURL      string
	traced        bool // a queue-proxy exporting spans to the sink
	done          chan struct{}
}

// launch starts bin pinned to cpu with exactly env, logging to the out dir.
func (b *bench) launch(name, cpu, bin string, args, env []string, port int) (*child, error) {
	logFile, err := os.OpenFile(filepath.Join(b.o.outDir, strings.ReplaceAll(name, " ", "-")+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", append([]string{"-c", cpu, bin}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, port: port, done: make(chan struct{}),
		probeURL: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	go func() {
		cmd.Wait() //nolint:errcheck // exits are expected: we kill them
		logFile.Close()
		close(c.done)
	}()
	b.children = append(b.children, c)
	return c, nil
}

// stop kills the process and waits for it.
func (c *child) stop() {
	c.cmd.Process.Kill() //nolint:errcheck // it may already have exited
	<-c.done
}

func (b *bench) stopAll() {
	for _, c := range b.children {
		c.stop()
	}
}

func (b *bench) launchBackend() (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return b.launch("backend", b.o.loadCPU, b.o.backendBin, []string{"-addr", fmt.Sprintf("127.0.0.1:%d", port)}, baseEnv(), port)
}

func (b *bench) launchBare(backendPort int) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return b.launch("bare proxy", b.o.proxyCPU, b.o.bareBin,
		[]string{"-addr", fmt.Sprintf(":%d", port), "-target", fmt.Sprintf("127.0.0.1:%d", backendPort)}, baseEnv(), port)
}

func (b *bench) launchQP(backendPort, cc int, profiling bool) (*child, error) {
	var ports [6]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	tr := tracing{mode: b.o.tracing, rate: b.o.tracingRate}
	if b.sink != nil {
		tr.sinkPort = b.sink.port
	}
	env := append(qpEnv(ports[0], ports[1], backendPort, ports[2], ports[3], ports[4], ports[5], cc, b.o.metrics, profiling, tr), b.o.qpEnv...)
	c, err := b.launch(fmt.Sprintf("queue-proxy cc=%d", cc), b.o.proxyCPU, b.o.qpBin, nil, env, ports[0])
	if c != nil {
		c.profilingPort = ports[5]
		c.traced = tr.mode != tracingOff
	}
	return c, err
}

// startSink starts the spans sink on the load CPU, where the collector's
// work competes with wrk and the backend rather than with the proxies.
func (b *bench) startSink() (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return b.ready(b.launch("spans sink", b.o.loadCPU, b.o.sinkBin,
		[]string{"-addr", fmt.Sprintf("127.0.0.1:%d", port)}, baseEnv(), port))
}

// sinkStats is what the spans sink has received (its GET answer).
type sinkStats struct {
	Posts  int64 `json:"posts"`  // exports accepted
	Bytes  int64 `json:"bytes"`  // their body bytes
	Spans  int64 `json:"spans"`  // spans in them
	Errors int64 `json:"errors"` // exports it could not parse
}

// sinkStats asks the spans sink for its counts.
func (b *bench) sinkStats() (sinkStats, error) {
	var st sinkStats
	resp, err := probeClient.Get(fmt.Sprintf("http://127.0.0.1:%d/", b.sink.port))
	if err != nil {
		return st, fmt.Errorf("spans sink: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("spans sink: %w", err)
	}
	return st, nil
}

// start* launch a long-running target and wait until it answers.
func (b *bench) startBackend() (*child, error) {
	return b.ready(b.launchBackend())
}

func (b *bench) startBare(backendPort int) (*child, error) {
	return b.ready(b.launchBare(backendPort))
}

func (b *bench) startQP(backendPort, cc int, profiling bool) (*child, error) {
	return b.ready(b.launchQP(backendPort, cc, profiling))
}

func (b *bench) ready(c *child, err error) (*child, error) {
	if err != nil {
		return nil, err
	}
	if _, err := waitOK(c, 30*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// probeClient sends one request per connection, as kubelet and the
// activator do.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

// probe sends an activator probe and returns the status code.
func probe(port int) (int, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "Knative-Activator-Probe")
	req.Header.Set("K-Network-Probe", "queue")
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitOK polls c with activator probes until one answers 200 and returns
// the time since c was started.
func waitOK(c *child, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		select {
		case <-c.done:
			return 0, fmt.Errorf("%s exited during startup; see its log in the out dir", c.name)
		default:
		}
		if code, err := probe(c.port); err == nil && code == http.StatusOK {
			return time.Since(start), nil
		}
		time.Sleep(200 * time.Microsecond)
	}
	return 0, fmt.Errorf("%s: no 200 within %v", c.name, timeout)
}

// download saves url's body to path.
func download(url, path string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freePort returns a port that is free on every interface right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// baseEnv is the environment every child gets: PATH only.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH")}
}

// tracing is how queue-proxy traces: the mode (-tracing), the sampling
// rate and the port of the spans sink it exports to.
type tracing struct {
	mode     string
	rate     float64
	sinkPort int
}

// qpEnv is the environment Knative's reconciler gives queue-proxy, on the
// given ports, with request metrics (both generations' switches) on or off
// and tracing as tr says:
//
//   - off: OBSERVABILITY_CONFIG with tracing.protocol none and
//     TRACING_CONFIG_BACKEND=none; the newest generation.
//   - zipkin: as Knative 1.15's reconciler sets it, without
//     OBSERVABILITY_CONFIG, so that queue-proxy runs the 1.15 generation
//     (QP_OBSERVABILITY_GENERATION auto): TRACING_CONFIG_BACKEND=zipkin
//     to the sink's /api/v2/spans at TRACING_CONFIG_SAMPLE_RATE, and
//     request metrics by the 1.15 switch, SERVING_REQUEST_METRICS_BACKEND
//     (so they are the 1.15 generation's metrics, not the newest's).
//   - otlp: OBSERVABILITY_CONFIG's tracing is http/protobuf to the sink's
//     /v1/traces at samplingRate, next to the same requestMetrics as off.
func qpEnv(main, tls, user, admin, metricsPort, prometheus, profiling, cc int, metrics, profilingOn bool, tr tracing) []string {
	requestMetrics := "none"
	backend := ""
	if metrics {
		requestMetrics, backend = "prometheus", "prometheus"
	}
	rate := strconv.FormatFloat(tr.rate, 'g', -1, 64)
	tracingConfig := `{"protocol":"none"}`
	if tr.mode == tracingOTLP {
		tracingConfig = fmt.Sprintf(`{"protocol":"http/protobuf","endpoint":"http://127.0.0.1:%d/v1/traces","samplingRate":%s}`, tr.sinkPort, rate)
	}
	env := map[string]string{
		"SERVING_NAMESPACE":                       "default",
		"SERVING_SERVICE":                         "bench",
		"SERVING_CONFIGURATION":                   "bench",
		"SERVING_REVISION":                        "bench-00001",
		"QUEUE_SERVING_PORT":                      strconv.Itoa(main),
		"QUEUE_SERVING_TLS_PORT":                  strconv.Itoa(tls),
		"CONTAINER_CONCURRENCY":                   strconv.Itoa(cc),
		"REVISION_TIMEOUT_SECONDS":                "300",
		"REVISION_RESPONSE_START_TIMEOUT_SECONDS": "0",
		"REVISION_IDLE_TIMEOUT_SECONDS":           "0",
		"SERVING_POD":                             "bench-00001-deployment-0",
		"SERVING_POD_IP":                          "127.0.0.1",
		"SERVING_LOGGING_CONFIG":                  "",
		"SERVING_LOGGING_LEVEL":                   "info",
		"USER_PORT":                               strconv.Itoa(user),
		"SYSTEM_NAMESPACE":                        "knative-serving",
		"SERVING_READINESS_PROBE":                 fmt.Sprintf(`{"tcpSocket":{"port":%d,"host":"127.0.0.1"},"successThreshold":1}`, user),
		"HOST_IP":                                 "127.0.0.1",
		"ENABLE_HTTP2_AUTO_DETECTION":             "false",
		"ENABLE_HTTP_FULL_DUPLEX":                 "false",
		"ROOT_CA":                                 "",
		"QUEUE_PROXY_TLS_MIN_VERSION":             "",
		"QUEUE_PROXY_TLS_MAX_VERSION":             "",
		"QUEUE_PROXY_TLS_CIPHER_SUITES":           "",
		"QUEUE_PROXY_TLS_CURVE_PREFERENCES":       "",
		"ENABLE_MULTI_CONTAINER_PROBES":           "false",
		"OBSERVABILITY_CONFIG":                    `{"tracing":` + tracingConfig + `,"metrics":{"protocol":"none"},"runtime":{"profiling":"disabled","exportInterval":15000000000},"requestMetrics":{"protocol":"` + requestMetrics + `"}}`,
		"SERVING_REQUEST_METRICS_BACKEND":         backend,
		"TRACING_CONFIG_BACKEND":                  "none",
		"QP_ADMIN_PORT":                           strconv.Itoa(admin),
		"QP_METRICS_PORT":                         strconv.Itoa(metricsPort),
		"METRICS_PROMETHEUS_PORT":                 strconv.Itoa(prometheus),
		"PROFILING_PORT":                          strconv.Itoa(profiling),
		"ENABLE_PROFILING":                        strconv.FormatBool(profilingOn),
		"QP_DEBUG_ADDRESS":                        "127.0.0.1:0", // on, as by default, without two processes fighting for 8023
	}
	if tr.mode == tracingZipkin {
		delete(env, "OBSERVABILITY_CONFIG")
		env["TRACING_CONFIG_BACKEND"] = "zipkin"
		env["TRACING_CONFIG_ZIPKIN_ENDPOINT"] = fmt.Sprintf("http://127.0.0.1:%d/api/v2/spans", tr.sinkPort)
		env["TRACING_CONFIG_SAMPLE_RATE"] = rate
		env["TRACING_CONFIG_DEBUG"] = "false"
	}
	l := baseEnv()
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	slices.Sort(l)
	return l
}

// loadavg returns /proc/loadavg's first three fields.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
