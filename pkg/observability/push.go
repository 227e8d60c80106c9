package observability

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// PushConfig configures a Pusher.
type PushConfig struct {
	// Collect returns the data to send (Metrics.Collect).
	Collect func() *metricdata.ResourceMetrics
	// Encode appends the wire form of a collection to a buffer
	// (otlp.AppendMetricsRequest).
	Encode func([]byte, *metricdata.ResourceMetrics) []byte
	// Export sends one encoded request, retrying as it sees fit, until it
	// succeeds, fails for good or ctx ends (otlp.Client.Export).
	Export func(ctx context.Context, body []byte) error
	// Interval between exports; Timeout bounds one export with its
	// retries (the OpenTelemetry SDK's periodic reader: 60 s and 30 s).
	Interval, Timeout time.Duration
	// OnError is told about every failed export; nil ignores them.
	OnError func(error)
	// Clock drives the interval; nil is the real clock.
	Clock clock.WithTicker
}

// Pusher exports a metrics collection periodically, like the OpenTelemetry
// SDK's periodic reader with cumulative temporality: every Interval it
// collects, encodes and exports on its own goroutine, one export at a time.
// Ticks that come while an export is still running (a slow or dead
// collector) are skipped: the next export carries the same cumulative
// values, so nothing is lost, memory stays bounded to one request, and
// requests never wait for the exporter. Shutdown makes a final export.
type Pusher struct {
	cfg    PushConfig
	ctx    context.Context // cancelled by Shutdown: ends a running export
	cancel context.CancelFunc
	done   chan struct{}
	exited chan struct{}

	mu  sync.Mutex // one collection and export at a time; guards buf
	buf []byte
}

// StartPush starts exporting every cfg.Interval.
func StartPush(cfg PushConfig) *Pusher {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pusher{cfg: cfg, ctx: ctx, cancel: cancel, done: make(chan struct{}), exited: make(chan struct{})}
	t := cfg.Clock.NewTicker(cfg.Interval)
	go func() {
		defer close(p.exited)
		defer t.Stop()
		for {
			select {
			case <-t.C():
				p.push(p.ctx)
			case <-p.done:
				return
			}
		}
	}()
	return p
}

// push collects, encodes and exports once, within the configured timeout
// and ctx.
func (p *Pusher) push(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
	}
	p.buf = p.cfg.Encode(p.buf[:0], p.cfg.Collect())
	err := p.cfg.Export(ctx, p.buf)
	if err != nil && p.cfg.OnError != nil {
		p.cfg.OnError(err)
	}
	if cap(p.buf) > maxKeptBuffer {
		p.buf = nil
	}
	return err
}

// maxKeptBuffer bounds the encoding buffer kept between exports.
const maxKeptBuffer = 1 << 20

// Shutdown stops the periodic exports, ends one that is running, and makes
// a final export of everything recorded so far within ctx (Knative gives
// its providers 10 s at exit). It is not idempotent: call it once.
func (p *Pusher) Shutdown(ctx context.Context) error {
	close(p.done)
	p.cancel()
	<-p.exited
	if err := p.push(ctx); err != nil {
		return errors.New("final metrics export: " + err.Error())
	}
	return nil
}
