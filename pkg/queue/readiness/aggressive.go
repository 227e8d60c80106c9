package readiness

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"
)

// timeSource is what aggressive polling needs of time: clock.RealClock in
// production, a manual clock in tests.
type timeSource interface {
	Now() time.Time
	NewTimer(time.Duration) clock.Timer
}

// poll runs one aggressive-mode run of c (CONTRACT.md §4.2, with the
// schedule of next): attempts until successThreshold consecutive successes
// (nil), until the run's pollTimeout window ends, or, once c has been ready,
// until the first failing attempt; the error of a failed run is "aggressive
// probe error (failed N times): <last error>", N counting port polls too,
// and a port poll's error worded as the probe would word it. Each attempt
// is bounded by attemptTimeout and by the end of the window. An error
// caused by ctx's cancellation (another probe of the set failed) is ctx's
// error and does not count as an attempt.
func (c *check) poll(ctx context.Context, p *Prober) error {
	clk := p.clock
	start := clk.Now()
	deadline := start.Add(p.pollTimeout)
	var (
		failures int
		last     error
		lastPort bool // last came from a port poll
		timer    clock.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for first := true; ; first = false {
		at, port := c.next(p, start, first)
		now := clk.Now()
		if wait := at.Sub(now); wait > 0 {
			wait = min(wait, deadline.Sub(now)) // wake at the window's end at the latest
			if timer == nil {
				timer = clk.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C():
			case <-ctx.Done():
				return ctx.Err()
			}
			now = clk.Now()
		}
		rest := deadline.Sub(now)
		if rest <= 0 {
			if last == nil {
				last = errors.New("probe timed out after " + strconv.Itoa(c.successes) +
					" of " + strconv.Itoa(c.threshold) + " consecutive successes")
			}
			return aggressiveError(failures, c.worded(last, lastPort))
		}
		actx, cancel := context.WithTimeout(ctx, min(p.attemptTimeout, rest))
		err := c.try(actx, p, port)
		cutByWindow := rest < p.attemptTimeout && actx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wasReady := c.seenReady
		if c.record(port, now, err) {
			return nil
		}
		if err == nil {
			continue
		}
		failures++
		// An attempt cut short by the end of the window keeps the error
		// of the previous one, which says more.
		if last == nil || !cutByWindow {
			last, lastPort = err, port
		}
		if wasReady { // fail fast once ready (see Prober)
			return aggressiveError(failures, c.worded(last, lastPort))
		}
	}
}

// try makes one attempt: a port poll (a TCP connect to c.addr), or the
// probe, which for tcpSocket is that same connect.
func (c *check) try(ctx context.Context, p *Prober, port bool) error {
	if port || c.dialIsProbe {
		return p.dial(ctx, c.addr)
	}
	return c.probe(ctx)
}

// next returns when c's next attempt of a run starts (at or before now:
// at once) and whether it is a port poll rather than the probe. first
// says no attempt has been made in the run yet, which started at start.
//
// The schedule, before the check has first been ready:
//
//   - httpGet, grpc: while the port refuses connections (at first, and
//     after a probe attempt that could not connect), poll it with a TCP
//     connect every portPoll; once it accepts, send the probe at once.
//     While the probe fails, its attempts start at least 1, 2, 4, ... ms
//     (backoff, doubling with every failed attempt the check has made
//     before its first readiness) and at most interval apart; after a
//     success that is still short of successThreshold, interval apart.
//   - tcpSocket: the connect is the probe: every portPoll while it fails,
//     interval apart while successes count up to successThreshold.
//
// The spacing holds across runs: a run's first probe attempt may wait for
// it. Since only the first six failures get pauses shorter than interval
// (1, 2, 4, 8, 16 and 32 ms), a check gets at most 7 probe requests in any
// 100 ms (as at 0, 1, 3, 7, 15, 31 and 63 ms), and once it has failed six
// times, none closer together than interval (Knative's rate), whatever
// its answers.
//
// Once the check has been ready, and in Knative's schedule (portPoll 0,
// which benchmarks compare against): the probe at once, then every
// interval.
func (c *check) next(p *Prober, start time.Time, first bool) (at time.Time, port bool) {
	if p.portPoll <= 0 || c.seenReady {
		if first {
			return start, false
		}
		return c.lastProbe.Add(p.interval), false
	}
	if c.dialIsProbe {
		if c.lastOK {
			return c.lastProbe.Add(p.interval), false
		}
		return c.lastProbe.Add(p.portPoll), false
	}
	var gate time.Time // earliest start of the next probe attempt
	switch {
	case c.lastProbe.IsZero():
	case c.lastOK:
		gate = c.lastProbe.Add(p.interval)
	default:
		gate = c.lastProbe.Add(c.backoff(p))
	}
	if c.portClosed {
		if poll := c.lastDial.Add(p.portPoll); poll.After(gate) {
			return poll, true
		}
		return gate, true
	}
	return gate, false
}

// backoff is the pause after c's failed probe attempts before readiness:
// p.backoff doubled for each failure after the first, at most p.interval.
func (c *check) backoff(p *Prober) time.Duration {
	d := p.backoff
	for i := 1; i < c.failed && d < p.interval; i++ {
		d *= 2
	}
	return min(d, p.interval)
}

// record updates c's state with the outcome of an attempt that started at
// start and reports whether the check is now ready (successThreshold
// consecutive successes).
func (c *check) record(port bool, start time.Time, err error) (ready bool) {
	if port {
		c.lastDial = start
		c.portClosed = err != nil
		return false
	}
	c.lastProbe = start
	if err == nil {
		c.lastOK = true
		c.successes++
		if c.successes >= c.threshold {
			c.seenReady = true
			return true
		}
		return false
	}
	c.lastOK, c.successes = false, 0
	if !c.seenReady {
		c.failed++
		c.portClosed = !c.dialIsProbe && couldNotConnect(err)
	}
	return false
}

// couldNotConnect reports whether err is a failure to connect (for
// example ECONNREFUSED: nothing listens on the port) rather than an answer
// or a failure after connecting.
func couldNotConnect(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// worded returns err as the check's probe reports it: a port poll's dial
// error in the probe's own words (`Get "http://...": dial tcp ...` for
// httpGet), so that logs read as they do without port polling.
func (c *check) worded(err error, port bool) error {
	if port && c.connErr != nil {
		return c.connErr(err)
	}
	return err
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
