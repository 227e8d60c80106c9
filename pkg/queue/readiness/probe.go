package readiness

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/queue-proxy/queue-proxy/pkg/queue/health"
)

// Aggressive-mode timing (CONTRACT.md §4.2), Knative's values.
const (
	// PollInterval is the time between the starts of two attempts.
	PollInterval = 50 * time.Millisecond
	// AttemptTimeout bounds one attempt.
	AttemptTimeout = 100 * time.Millisecond
	// PollTimeout bounds one aggressive probe run.
	PollTimeout = 10 * time.Second

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
//   - aggressive (periodSeconds <= 0, Knative's default): try at once, then
//     every 50 ms, each attempt bounded by 100 ms, for up to 10 s, until
//     successThreshold consecutive successes; the success count is kept
//     across calls and reset by a failure.
//
// Deliberate improvement over Knative: once a probe has been seen ready, a
// failing attempt ends its aggressive run at once (answer: not ready)
// instead of polling for up to 10 s. Before the first success Knative's
// polling is kept: that is what lets a starting pod answer "ready" to the
// activator's first probe as soon as the app listens (cold starts). After
// it, a failure means the container went bad; Knative would hold every
// caller for the full 10 s, long after the activator (300 ms) and
// possibly kubelet gave up, while the pod keeps receiving traffic; we
// answer 503 within one attempt (at most 100 ms) and leave it to kubelet's
// failureThreshold to decide whether one failed answer matters. Successes
// still poll on to successThreshold, which takes milliseconds.
//
// All probes run concurrently and all must pass; the first failure cancels
// the others and decides. Concurrent callers share one run (single flight);
// nothing is cached after it.
type Prober struct {
	checks []*check
	log    *zap.SugaredLogger

	// Aggressive-mode timing; tests shrink these.
	interval, attemptTimeout, pollTimeout time.Duration

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
// the running flight touches.
type check struct {
	name       string // for logs: "httpGet", or "probe 1 (grpc)" in a set
	probe      func(context.Context) error
	aggressive bool
	timeout    time.Duration // standard mode
	threshold  int           // aggressive mode

	successes int  // consecutive successful attempts
	seenReady bool // successes reached threshold at least once
}

// NewProber returns a Prober for probes (as Decode returns them). No probes
// means always ready.
func NewProber(probes []*Probe, o Options) (*Prober, error) {
	p := &Prober{
		log:            o.Logger,
		interval:       PollInterval,
		attemptTimeout: AttemptTimeout,
		pollTimeout:    PollTimeout,
	}
	for i, pr := range probes {
		if err := validate(pr); err != nil {
			return nil, errors.New("probe " + strconv.Itoa(i) + ": " + err.Error())
		}
		c := &check{name: pr.kind(), threshold: max(1, int(pr.SuccessThreshold))}
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
			c.probe = hp.Probe
		case "tcpSocket":
			port, _ := pr.TCPSocket.Port.resolve()
			addr := net.JoinHostPort(hostOrLocal(pr.TCPSocket.Host), strconv.Itoa(port))
			c.probe = func(ctx context.Context) error { return health.TCPProbe(ctx, addr) }
		case "grpc":
			port, _ := pr.GRPC.Port.resolve()
			gp, err := health.NewGRPCProbe(net.JoinHostPort(localhost, strconv.Itoa(port)), pr.GRPC.Service)
			if err != nil {
				return nil, err
			}
			c.probe = gp.Probe
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

// run makes one standard attempt or one aggressive poll. An error caused by
// ctx's cancellation (another probe failed) is ctx's error and does not
// count as an attempt.
func (c *check) run(ctx context.Context, p *Prober) error {
	if !c.aggressive {
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		return c.probe(actx)
	}
	return c.poll(ctx, p.interval, p.attemptTimeout, p.pollTimeout)
}

func (c *check) poll(ctx context.Context, interval, attemptTimeout, pollTimeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	var (
		failures int
		last     error
		timer    *time.Timer
	)
	for {
		start := time.Now()
		actx, acancel := context.WithTimeout(pctx, attemptTimeout)
		err := c.probe(actx)
		acancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			c.successes++
			if c.successes >= c.threshold {
				c.seenReady = true
				return nil
			}
		} else {
			c.successes = 0
			failures++
			// An attempt cut short by the end of the poll keeps the error
			// of the previous one, which says more.
			if last == nil || pctx.Err() == nil {
				last = err
			}
			if c.seenReady { // see Prober: fail fast once ready
				return aggressiveError(failures, last)
			}
		}
		if wait := interval - time.Since(start); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
				defer timer.Stop()
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-pctx.Done():
			}
		}
		if pctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if last == nil {
				last = errors.New("probe timed out after " + strconv.Itoa(c.successes) +
					" of " + strconv.Itoa(c.threshold) + " consecutive successes")
			}
			return aggressiveError(failures, last)
		}
	}
}

func aggressiveError(failures int, last error) error {
	var b strings.Builder
	b.WriteString("aggressive probe error (failed ")
	b.WriteString(strconv.Itoa(failures))
	b.WriteString(" times): ")
	b.WriteString(last.Error())
	return &probeError{msg: b.String(), err: last}
}

// probeError keeps the last attempt's error for errors.Is and errors.As.
type probeError struct {
	msg string
	err error
}

func (e *probeError) Error() string { return e.msg }
func (e *probeError) Unwrap() error { return e.err }
