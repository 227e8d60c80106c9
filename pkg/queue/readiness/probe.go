package readiness

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/queue-proxy/queue-proxy/pkg/queue/health"
)

// Aggressive-mode timing (CONTRACT.md §4.2): Knative's values, and those
// of the port polling that precedes the first readiness.
const (
	// PollInterval is Knative's time between the starts of two attempts; here
	// the spacing of attempts once a probe has been ready, of successes
	// counting up to successThreshold, and the longest back-off.
	PollInterval = 50 * time.Millisecond
	// AttemptTimeout bounds one attempt (a port poll or the probe).
	AttemptTimeout = 100 * time.Millisecond
	// PollTimeout bounds one aggressive probe run.
	PollTimeout = 10 * time.Second

	// PortPollInterval is the time between the starts of two TCP connects
	// to a probe's port while it refuses them, before the probe has first
	// been ready. A loopback connect to a closed port fails at once
	// (ECONNREFUSED) and costs microseconds.
	PortPollInterval = time.Millisecond
	// BackoffStart is the pause after the first failed HTTP or gRPC probe
	// attempt before readiness; it doubles with every further failure, up to
	// PollInterval.
	BackoffStart = time.Millisecond

	// defaultTimeout bounds a standard-mode attempt whose timeoutSeconds is
	// 0, Kubernetes' default timeoutSeconds. Knative would not time out
	// (HTTP, TCP) or fail at once (gRPC); the reconciler always sets at least
	// 1 s, so this only concerns hand-written probes, where an unbounded
	// attempt would hold every waiting prober forever.
	defaultTimeout = time.Second

	localhost = "127.0.0.1"
)

// Options configure a Prober.
type Options struct {
	// HTTP2AutoDetection is ENABLE_HTTP2_AUTO_DETECTION (CONTRACT.md §4.4).
	HTTP2AutoDetection bool
	// Logger receives probe failures and readiness changes; nil logs
	// nothing.
	Logger *zap.SugaredLogger
}

// Prober runs a container set's readiness probes for the probe handler.
//
// Modes (CONTRACT.md §4.2), per probe:
//
//   - standard (periodSeconds > 0): one attempt bounded by timeoutSeconds;
//     thresholds are left to kubelet, which probes the queue-proxy with the
//     same timings.
//   - aggressive (periodSeconds <= 0, Knative's default): attempts, each
//     bounded by 100 ms, for up to 10 s, until successThreshold consecutive
//     successes; the success count is kept across calls and reset by a
//     failure.
//
// Deliberate improvements over Knative, which tries at once and then every
// 50 ms:
//
//   - Instant readiness. Until a probe has first been ready, its port is
//     polled with a TCP connect every millisecond while it refuses
//     connections, and the probe (httpGet, grpc) is sent as soon as it
//     accepts; for tcpSocket that connect is the probe. A starting pod
//     therefore answers the activator's held probe about a millisecond
//     after the app listens instead of up to 50 ms. An app that listens but
//     is not ready yet is not hammered: failed HTTP/gRPC attempts back off
//     1, 2, 4, ... ms up to 50 ms, so it gets at most 7 probe requests in
//     any 100 ms and, once they have failed six times, Knative's rate
//     (check.next states the schedule). After the first readiness the
//     schedule is Knative's.
//   - Fail fast once ready. After a probe has been seen ready, a failing
//     attempt ends its aggressive run at once (answer: not ready) instead of
//     polling for up to 10 s. A failure then means the container went bad;
//     Knative would hold every caller for the full 10 s, long after the
//     activator (300 ms) and possibly kubelet gave up, while the pod keeps
//     receiving traffic; we answer 503 within one attempt (at most 100 ms)
//     and leave it to kubelet's failureThreshold to decide whether one
//     failed answer matters. Successes still poll on to successThreshold,
//     50 ms apart.
//
// All probes run concurrently and all must pass; the first failure cancels
// the others and decides. Concurrent callers share one run (single flight);
// nothing is cached after it.
type Prober struct {
	checks []*check
	log    *zap.SugaredLogger

	// Aggressive-mode timing; tests shrink these. portPoll 0 is Knative's
	// schedule: no port polling, no back-off (benchmarks compare).
	interval, attemptTimeout, pollTimeout time.Duration
	portPoll, backoff                     time.Duration
	clock                                 timeSource
	// dial connects to host:port and closes the connection: tcpSocket
	// probes and port polls; tests fake it.
	dial func(ctx context.Context, addr string) error

	mu       sync.Mutex
	inflight *flight
	onShare  func() // tests: called when a caller joins a run in flight

	// Owned by the running flight (flights never overlap).
	everReady bool // some run has succeeded
	lastReady bool // the last run succeeded
}

// flight is one shared probe run.
type flight struct {
	done  chan struct{}
	ready bool
}

// check is one probe of the set with its aggressive-mode state, which only
// the running flight touches and which is kept across runs.
type check struct {
	name        string                      // for logs: "httpGet", or "probe 1 (grpc)" in a set
	probe       func(context.Context) error // httpGet, grpc
	addr        string                      // host:port of the probe's port
	dialIsProbe bool                        // tcpSocket: a connect to addr is the probe
	// connErr words a connect error as the probe reports it (nil: as is).
	connErr    func(error) error
	aggressive bool
	timeout    time.Duration // standard mode
	threshold  int           // aggressive mode

	successes  int       // consecutive successful attempts
	seenReady  bool      // successes reached threshold at least once
	lastOK     bool      // the last probe attempt succeeded
	failed     int       // probe attempts failed before seenReady (back-off)
	portClosed bool      // before seenReady: poll the port before probing
	lastProbe  time.Time // start of the last probe attempt
	lastDial   time.Time // start of the last port poll
}

// NewProber returns a Prober for probes (as Decode returns them). No probes
// means always ready.
func NewProber(probes []*Probe, o Options) (*Prober, error) {
	p := &Prober{
		log:            o.Logger,
		interval:       PollInterval,
		attemptTimeout: AttemptTimeout,
		pollTimeout:    PollTimeout,
		portPoll:       PortPollInterval,
		backoff:        BackoffStart,
		clock:          clock.RealClock{},
		dial:           health.TCPProbe,
	}
	for i, pr := range probes {
		if err := validate(pr); err != nil {
			return nil, errors.New("probe " + strconv.Itoa(i) + ": " + err.Error())
		}
		c := &check{name: pr.kind(), threshold: max(1, int(pr.SuccessThreshold)), portClosed: true}
		if len(probes) > 1 {
			c.name = "probe " + strconv.Itoa(i) + " (" + c.name + ")"
		}
		if pr.PeriodSeconds > 0 {
			c.timeout = time.Duration(pr.TimeoutSeconds) * time.Second
			if c.timeout <= 0 {
				c.timeout = defaultTimeout
			}
		} else {
			c.aggressive = true
		}
		switch pr.kind() {
		case "httpGet":
			hp, err := newHTTPProbe(pr.HTTPGet, o.HTTP2AutoDetection)
			if err != nil {
				return nil, err // validate built it already
			}
			port, _ := pr.HTTPGet.Port.resolve()
			c.probe, c.connErr = hp.Probe, hp.ConnectError
			c.addr = net.JoinHostPort(hostOrLocal(pr.HTTPGet.Host), strconv.Itoa(port))
		case "tcpSocket":
			port, _ := pr.TCPSocket.Port.resolve()
			c.addr = net.JoinHostPort(hostOrLocal(pr.TCPSocket.Host), strconv.Itoa(port))
			c.dialIsProbe = true
		case "grpc":
			port, _ := pr.GRPC.Port.resolve()
			c.addr = net.JoinHostPort(localhost, strconv.Itoa(port))
			gp, err := health.NewGRPCProbe(c.addr, pr.GRPC.Service)
			if err != nil {
				return nil, err
			}
			c.probe, c.connErr = gp.Probe, gp.ConnectError
		}
		p.checks = append(p.checks, c)
	}
	return p, nil
}

func newHTTPProbe(h *HTTPGetAction, autoDetectHTTP2 bool) (*health.HTTPProbe, error) {
	port, err := h.Port.resolve()
	if err != nil {
		return nil, err
	}
	var hdr http.Header
	if len(h.HTTPHeaders) > 0 {
		hdr = make(http.Header, len(h.HTTPHeaders))
		for _, x := range h.HTTPHeaders {
			hdr.Add(x.Name, x.Value)
		}
	}
	return health.NewHTTPProbe(health.HTTPProbeOptions{
		Scheme: h.Scheme, Host: hostOrLocal(h.Host), Port: port, Path: h.Path,
		Header: hdr, AutoDetectHTTP2: autoDetectHTTP2,
	})
}

// hostOrLocal defaults an empty probe host to loopback (the reconciler sets
// 127.0.0.1; an empty host would dial the local host anyway).
func hostOrLocal(h string) string {
	if h == "" {
		return localhost
	}
	return h
}

// ProbeContainer runs the probes and reports whether every one passed.
// Callers arriving while a run is in flight wait for it and share its
// result.
func (p *Prober) ProbeContainer() bool {
	if len(p.checks) == 0 {
		return true
	}
	p.mu.Lock()
	if f := p.inflight; f != nil {
		p.mu.Unlock()
		if p.onShare != nil {
			p.onShare()
		}
		<-f.done
		return f.ready
	}
	f := &flight{done: make(chan struct{})}
	p.inflight = f
	p.mu.Unlock()

	defer func() { // also if a probe panics, so that waiters are released
		p.mu.Lock()
		p.inflight = nil
		p.mu.Unlock()
		close(f.done)
	}()
	f.ready = p.run()
	return f.ready
}

// run probes once and logs the outcome.
func (p *Prober) run() bool {
	var failed *check
	var err error
	if len(p.checks) == 1 {
		failed, err = p.checks[0], p.checks[0].run(context.Background(), p)
	} else {
		failed, err = p.runAll()
	}
	if err == nil {
		if !p.lastReady && p.log != nil {
			p.log.Info("Readiness probe succeeded")
		}
		p.everReady, p.lastReady = true, true
		return true
	}
	if p.log != nil {
		// Failures while starting are expected (the app is not listening
		// yet) and logged at info; losing readiness is a warning.
		msg := "Readiness probe failed"
		if p.everReady {
			p.log.Warnw(msg, "probe", failed.name, zap.Error(err))
		} else {
			p.log.Infow(msg, "probe", failed.name, zap.Error(err))
		}
	}
	p.lastReady = false
	return false
}

// runAll runs every check concurrently. The first failure cancels the
// others and is returned; it waits for all, so that no check outlives its
// flight.
func (p *Prober) runAll() (*check, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		c   *check
		err error
	}
	results := make(chan result, len(p.checks))
	for _, c := range p.checks {
		go func() { results <- result{c, c.run(ctx, p)} }()
	}
	var first result
	for range p.checks {
		r := <-results
		if r.err != nil && first.err == nil {
			first = r
			cancel()
		}
	}
	return first.c, first.err
}

// run makes one standard attempt or one aggressive run. An error caused by
// ctx's cancellation (another probe failed) is ctx's error and does not
// count as an attempt.
func (c *check) run(ctx context.Context, p *Prober) error {
	if !c.aggressive {
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		return c.try(actx, p, false)
	}
	return c.poll(ctx, p)
}
