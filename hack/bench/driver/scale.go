package main

// `driver scale` (hack/bench/scale.sh, `make bench-scale`) measures what
// each extra connection, websocket, h2c stream and streamed byte costs a
// proxy: queue-proxy against the bare proxy (and Knative's queue-proxy
// binary with -knative-qp), same run, each figure once per target.
//
// This process is the load: it is meant to run pinned to the load CPU
// (scale.sh runs it under taskset), beside the backend; the proxies it
// starts are pinned to the proxy CPU. Every section starts each proxy
// afresh, one at a time, so that one section's garbage and grown heap do
// not show in the next one's memory, and a Knative queue-proxy (which
// binds fixed ports) never meets another.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// scaleOptions are the settings of `driver scale`.
type scaleOptions struct {
	qpBin, knativeBin, backendBin, bareBin, h2loadBin string
	outDir                                            string
	proxyCPU, loadCPU                                 string
	metrics                                           bool
	conns, websockets                                 intList       // counts to open, ascending
	echoConns                                         int           // websockets echoing for the CPU figure
	echoDuration, h2cDuration, settle                 time.Duration // settle: idle wait before reading memory
	streamBytes                                       int64
}

// intList is a comma-separated list of positive, strictly ascending
// integers (-conns 1000,10000).
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out intList
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return fmt.Errorf("%q: counts must ascend", v)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// Target names of the scale benchmark.
const (
	scaleQPName      = "queue-proxy"
	scaleKnativeName = "Knative queue-proxy"
)

// scaleTarget is a proxy the scale benchmark starts afresh for each
// section; h2c asks for its h2c set-up.
type scaleTarget struct {
	name  string
	start func(backendPort int, h2c bool) (*child, error)
}

// scaleMain runs `driver scale ARGS` and returns the exit code.
func scaleMain(args []string) int {
	var o scaleOptions
	fs := flag.NewFlagSet("driver scale", flag.ContinueOnError)
	fs.StringVar(&o.qpBin, "qp", "bin/queue-proxy", "queue-proxy binary")
	fs.StringVar(&o.knativeBin, "knative-qp", "", `Knative's queue-proxy binary, for an extra row; "" skips it`)
	fs.StringVar(&o.backendBin, "backend", "", "backend binary (hack/bench/backend; run with -scale)")
	fs.StringVar(&o.bareBin, "bare", "", "bare proxy binary (hack/bench/bareproxy)")
	fs.StringVar(&o.h2loadBin, "h2load", "h2load", `h2load binary (nghttp2-client); "" or not found skips the h2c section`)
	fs.StringVar(&o.outDir, "out", "out/bench-scale", "directory for the servers' logs and the report")
	fs.StringVar(&o.proxyCPU, "proxy-cpu", "0", "CPU list (taskset) for the proxies")
	fs.StringVar(&o.loadCPU, "load-cpu", "1", "CPU list (taskset) for the backend and h2load (run this driver there too)")
	fs.BoolVar(&o.metrics, "metrics", true, "run queue-proxy with request metrics on (prometheus)")
	o.conns, o.websockets = intList{1000, 10000}, intList{100, 1000}
	fs.Var(&o.conns, "conns", "idle keep-alive client connections to hold open, ascending")
	fs.Var(&o.websockets, "websockets", "idle websockets to hold open, ascending")
	fs.IntVar(&o.echoConns, "echo-conns", 100, "websockets echoing messages for the CPU figure")
	fs.DurationVar(&o.echoDuration, "echo-duration", 10*time.Second, "how long they echo")
	fs.DurationVar(&o.h2cDuration, "h2c-duration", 10*time.Second, "length of one h2load run (whole seconds)")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "idle wait before each memory reading")
	fs.Int64Var(&o.streamBytes, "stream-bytes", 1<<30, "bytes uploaded and downloaded through each proxy")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: options{qpBin: o.qpBin, backendBin: o.backendBin, bareBin: o.bareBin,
		outDir: o.outDir, proxyCPU: o.proxyCPU, loadCPU: o.loadCPU, metrics: o.metrics}}
	s := &scaleBench{o: o, b: b}
	err := s.run(ctx)
	b.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		return 1
	}
	return 0
}

// check rejects settings the benchmark cannot run with.
func (o *scaleOptions) check() error {
	switch {
	case o.backendBin == "" || o.bareBin == "":
		return errors.New("-backend and -bare are required")
	case len(o.conns) == 0 || len(o.websockets) == 0:
		return errors.New("-conns and -websockets need at least one count")
	case o.echoConns <= 0 || o.echoConns > o.websockets[len(o.websockets)-1]:
		return fmt.Errorf("-echo-conns %d must be from 1 to the largest -websockets count", o.echoConns)
	case o.h2cDuration < time.Second:
		return errors.New("-h2c-duration must be at least 1s")
	case o.streamBytes <= 0:
		return errors.New("-stream-bytes must be positive")
	}
	return nil
}

// section is one part of a scale run, measured on each target in turn.
type section struct {
	name string
	run  func(context.Context, scaleTarget) error
}

// scaleBench is one run of the scale benchmark.
type scaleBench struct {
	o       scaleOptions
	b       *bench // starts and stops the processes
	backend *child
	targets []scaleTarget
	res     scaleResults
}

func (s *scaleBench) run(ctx context.Context) error {
	if err := os.MkdirAll(s.o.outDir, 0o755); err != nil {
		return err
	}
	started, loadBefore := time.Now(), loadavg()
	// The driver holds the connections, then the websockets, never both.
	need := max(s.o.conns[len(s.o.conns)-1], s.o.websockets[len(s.o.websockets)-1]) + 256
	if err := raiseFileLimit(need); err != nil {
		return err
	}
	var err error
	if s.backend, err = s.startBackend(); err != nil {
		return err
	}
	s.targets = s.scaleTargets()
	s.res = scaleResults{o: s.o, targets: make([]string, len(s.targets))}
	for i, tg := range s.targets {
		s.res.targets[i] = tg.name
	}

	sections := []section{
		{"idle keep-alive connections", s.idleConns},
		{"websockets", s.websockets},
		{"h2c", s.h2c},
		{"streaming", s.streaming},
	}
	if p, err := exec.LookPath(s.o.h2loadBin); s.o.h2loadBin != "" && err == nil {
		s.o.h2loadBin = p
	} else {
		s.res.h2cSkipped = "no h2load (-h2load \"\")"
		if s.o.h2loadBin != "" {
			s.res.h2cSkipped = fmt.Sprintf("h2load (%q) not found; install nghttp2-client", s.o.h2loadBin)
		}
		logf("skipping h2c: %s", s.res.h2cSkipped)
		sections = slices.DeleteFunc(sections, func(sec section) bool { return sec.name == "h2c" })
	}
	for _, sec := range sections {
		for _, tg := range s.targets {
			if err := ctx.Err(); err != nil {
				return err
			}
			logf("%s: %s", sec.name, tg.name)
			if err := sec.run(ctx, tg); err != nil {
				return fmt.Errorf("%s, %s: %w", sec.name, tg.name, err)
			}
		}
	}

	s.res.elapsed, s.res.loadavg = time.Since(started), [2]string{loadBefore, loadavg()}
	text := s.res.String()
	fmt.Print(text)
	return os.WriteFile(filepath.Join(s.o.outDir, "results.md"), []byte(text), 0o644)
}

// scaleTargets are the bare proxy, queue-proxy (CONTAINER_CONCURRENCY 0,
// the environment Knative gives it) and, with -knative-qp, Knative's
// queue-proxy with the same environment.
func (s *scaleBench) scaleTargets() []scaleTarget {
	ts := []scaleTarget{
		{bareName, s.startBare},
		{scaleQPName, func(backendPort int, h2c bool) (*child, error) {
			return s.startQueueProxy(scaleQPName, s.o.qpBin, backendPort, h2c)
		}},
	}
	if s.o.knativeBin != "" {
		ts = append(ts, scaleTarget{scaleKnativeName, func(backendPort int, h2c bool) (*child, error) {
			return s.startQueueProxy(scaleKnativeName, s.o.knativeBin, backendPort, h2c)
		}})
	}
	return ts
}

// startBackend starts the backend with its scale endpoints and h2c.
func (s *scaleBench) startBackend() (*child, error) {
	p, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	return s.b.ready(s.b.launch("backend", s.o.loadCPU, s.o.backendBin,
		[]string{"-addr", fmt.Sprintf("127.0.0.1:%d", p[0]), "-scale"}, baseEnv(), p[0]))
}

// startBare starts the bare proxy, h2c-capable on both sides for the h2c
// section, and waits until it answers.
func (s *scaleBench) startBare(backendPort int, h2c bool) (*child, error) {
	p, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	args := []string{"-addr", fmt.Sprintf(":%d", p[0]), "-target", fmt.Sprintf("127.0.0.1:%d", backendPort)}
	if h2c {
		args = append(args, "-h2c")
	}
	return s.b.ready(s.b.launch(bareName, s.o.proxyCPU, s.o.bareBin, args, baseEnv(), p[0]))
}

// h2cEnv is what an h2c revision changes in queue-proxy's environment. The
// protocol to the user container follows the client's (CONTRACT.md §3: an
// HTTP/2 request goes upstream as h2c), so no variable is needed for that;
// Knative moves QUEUE_SERVING_PORT to 8013 (a free port here anyway) and,
// with its autodetect-http2 feature flag, sets
// ENABLE_HTTP2_AUTO_DETECTION=true, which changes only HTTP readiness
// probes (the bench's probe is tcpSocket), so it is set as that flag would.
var h2cEnv = []string{"ENABLE_HTTP2_AUTO_DETECTION=true"}

// startQueueProxy starts bin with the environment Knative gives
// queue-proxy (qpEnv, CONTAINER_CONCURRENCY 0, tracing off), plus h2cEnv
// for the h2c section, and waits until it answers.
func (s *scaleBench) startQueueProxy(name, bin string, backendPort int, h2c bool) (*child, error) {
	p, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	env := qpEnv(p[0], p[1], backendPort, p[2], p[3], p[4], p[5], 0, s.o.metrics, false, tracing{})
	if h2c {
		env = append(env, h2cEnv...) // exec keeps the last of a repeated key
	}
	return s.b.ready(s.b.launch(name, s.o.proxyCPU, bin, nil, env, p[0]))
}

// warmUp sends 5 activator probes and 5 proxied requests, as a pod
// sees right after it starts.
func warmUp(port int) error {
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	for range 5 {
		if code, err := probe(port); err != nil || code != http.StatusOK {
			return fmt.Errorf("probe: %d, %v", code, err)
		}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /: %s", resp.Status)
		}
	}
	return nil
}

// cpuDelta runs f and returns the CPU-seconds pid used meanwhile.
func cpuDelta(pid int, f func() error) (float64, error) {
	c0, err := cpuSeconds(pid)
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	c1, err := cpuSeconds(pid)
	return c1 - c0, err
}

// raiseFileLimit raises this process's open-file soft limit to its hard
// limit, and fails when even that is below need.
func raiseFileLimit(need int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < uint64(need) {
		return fmt.Errorf("open-file limit %d is below the %d this run needs: raise it (ulimit -n) or lower -conns/-websockets", l.Cur, need)
	}
	return nil
}

// freePorts returns n distinct ports that are free right now.
func freePorts(n int) ([]int, error) {
	var ps []int
	for len(ps) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps, nil
}
