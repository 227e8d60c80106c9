package http

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// ErrTimeoutDialing is wrapped by the error of a dial that timed out on
// every attempt.
var ErrTimeoutDialing = errors.New("timed out dialing")

// BackoffDialer dials with growing per-attempt timeouts, so that a user
// container whose listen backlog is momentarily full is retried rather than
// failed, while a closed port fails at once (CONTRACT.md §3.2):
//
//   - the first attempt may take Initial (50 ms); each next one Factor (1.4)
//     times longer, with up to Jitter (10%) added; at most Steps (15) retries;
//   - only timeouts are retried; between attempts it waits Sleep to 2×Sleep
//     (30–60 ms) or until ctx is done;
//   - after the last attempt the error is "timed out dialing <addr> after
//     N.NNs", wrapping ErrTimeoutDialing.
//
// Connections use a 5 s TCP keep-alive.
type BackoffDialer struct {
	Initial time.Duration
	Factor  float64
	Jitter  float64
	Steps   int
	Sleep   time.Duration

	// dial makes one attempt; nil means a net.Dialer (tests replace it).
	dial func(ctx context.Context, timeout time.Duration, network, addr string) (net.Conn, error)
}

func netDial(ctx context.Context, timeout time.Duration, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 5 * time.Second}
	return d.DialContext(ctx, network, addr)
}

// NewBackoffDialer returns a BackoffDialer with Knative's settings.
func NewBackoffDialer() *BackoffDialer {
	return &BackoffDialer{Initial: 50 * time.Millisecond, Factor: 1.4, Jitter: 0.1, Steps: 15, Sleep: 30 * time.Millisecond}
}

// DialContext has the signature of http.Transport.DialContext.
func (d *BackoffDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := d.dial
	if dial == nil {
		dial = netDial
	}
	start := time.Now()
	step, timeout := d.Initial, d.Initial
	for attempt := 0; ; attempt++ {
		c, err := dial(ctx, timeout, network, addr)
		var netErr net.Error
		if err == nil || !errors.As(err, &netErr) || !netErr.Timeout() || ctx.Err() != nil {
			return c, err
		}
		if attempt >= d.Steps {
			break
		}
		step = time.Duration(float64(step) * d.Factor)
		timeout = step + time.Duration(rand.Float64()*d.Jitter*float64(step))
		pause := time.NewTimer(d.Sleep + time.Duration(rand.Int64N(int64(d.Sleep)+1)))
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil, ctx.Err()
		case <-pause.C:
		}
	}
	return nil, &timeoutDialError{addr: addr, elapsed: time.Since(start)}
}

type timeoutDialError struct {
	addr    string
	elapsed time.Duration
}

func (e *timeoutDialError) Error() string {
	return ErrTimeoutDialing.Error() + " " + e.addr + " after " + strconv.FormatFloat(e.elapsed.Seconds(), 'f', 2, 64) + "s"
}

func (e *timeoutDialError) Unwrap() error { return ErrTimeoutDialing }
