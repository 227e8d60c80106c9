// Package spanbatch batches OpenCensus spans for export the way the
// OpenTelemetry Go SDK's batch span processor (v1.47.0) batches OTel spans:
// a bounded queue that drops when full, batches of MaxExportBatchSize or
// whatever waited ScheduleDelay, one export at a time, each bounded by
// ExportTimeout, and a flush at Shutdown. The OTEL_BSP_* variables tune it
// (ConfigFromEnv).
package spanbatch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opencensus.io/trace"
	"k8s.io/utils/clock"
)

// ExportFunc sends one batch of spans, honouring ctx. The slice is reused
// once it returns: it must not be retained (the spans may be).
type ExportFunc func(ctx context.Context, spans []*trace.SpanData) error

// Processor is a trace.Exporter that queues spans and hands them to an
// ExportFunc in batches from a goroutine of its own.
//
// ExportSpan never blocks: a span that finds the queue full, or arrives
// after Shutdown, is dropped and counted (Dropped, Config.OnDrop). Memory
// is bounded by MaxQueueSize queued spans plus one batch being exported.
// Dropped counts spans that never reached the exporter; a failed export is
// reported to onError instead.
type Processor struct {
	cfg     Config
	export  ExportFunc
	onError func(error)

	// mu orders ExportSpan's sends against Shutdown's close of queue, so
	// that every span is either exported or counted as dropped.
	mu      sync.RWMutex
	stopped bool
	queue   chan *trace.SpanData
	dropped atomic.Uint64

	// ctx is the parent of every export; Shutdown cancels it when its own
	// context ends first, and the goroutine when it exits.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has exited

	// Owned by the goroutine.
	batch      []*trace.SpanData
	timer      clock.Timer
	reported   uint64    // dropped count at the last OnDrop call
	lastReport time.Time // time of the last OnDrop call, or New
}

var _ trace.Exporter = (*Processor)(nil)

// New starts a Processor that exports through export and reports failed
// exports to onError (nil: ignored). Shutdown stops it.
func New(cfg Config, export ExportFunc, onError func(error)) *Processor {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Processor{
		cfg:        cfg,
		export:     export,
		onError:    onError,
		queue:      make(chan *trace.SpanData, cfg.MaxQueueSize),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		batch:      make([]*trace.SpanData, 0, cfg.MaxExportBatchSize),
		timer:      cfg.Clock.NewTimer(cfg.ScheduleDelay),
		lastReport: cfg.Clock.Now(),
	}
	go p.run()
	return p
}

// ExportSpan implements trace.Exporter: it queues sd, or drops and counts
// it when the queue is full or the Processor is shut down. It never blocks.
func (p *Processor) ExportSpan(sd *trace.SpanData) {
	if sd == nil {
		return
	}
	p.mu.RLock()
	if p.stopped {
		p.dropped.Add(1)
	} else {
		select {
		case p.queue <- sd:
		default:
			p.dropped.Add(1)
		}
	}
	p.mu.RUnlock()
}

// Dropped is the number of spans dropped so far.
func (p *Processor) Dropped() uint64 {
	return p.dropped.Load()
}

// Shutdown stops accepting spans, exports everything queued (in batches)
// and waits for the goroutine to exit. When ctx ends first it cancels the
// export in progress, counts the spans not yet exported as dropped, and
// returns ctx's error without waiting further; an exporter that ignores
// its context keeps the goroutine alive until it returns. Shutdown may be
// called again (e.g. with a longer ctx) to wait for that.
func (p *Processor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.queue)
	}
	p.mu.Unlock()

	select {
	case <-p.done:
		return nil
	default:
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.cancel()
		return ctx.Err()
	}
}

// run is the goroutine: it collects spans into batches and exports one
// when it is full or the timer fires, until Shutdown closes the queue.
func (p *Processor) run() {
	defer close(p.done)
	defer p.cancel()
	defer p.timer.Stop()
	for {
		select {
		case sd, ok := <-p.queue:
			if !ok {
				p.exportBatch()
				p.reportDrops(true)
				return
			}
			p.batch = append(p.batch, sd)
			if len(p.batch) >= p.cfg.MaxExportBatchSize {
				p.stopTimer()
				p.reportDrops(false)
				p.exportBatch()
				p.timer.Reset(p.cfg.ScheduleDelay)
			}
		case <-p.timer.C():
			p.reportDrops(false)
			p.exportBatch()
			p.timer.Reset(p.cfg.ScheduleDelay)
		}
	}
}

// stopTimer stops the timer and discards a tick it may already have sent,
// so that Reset starts a fresh ScheduleDelay.
func (p *Processor) stopTimer() {
	if !p.timer.Stop() {
		select {
		case <-p.timer.C():
		default:
		}
	}
}

// exportBatch exports the current batch, if any, and empties it. After an
// abandoned Shutdown it counts the batch as dropped instead.
func (p *Processor) exportBatch() {
	n := len(p.batch)
	if n == 0 {
		return
	}
	defer func() {
		clear(p.batch) // let the spans be collected
		p.batch = p.batch[:0]
	}()
	if p.ctx.Err() != nil {
		p.dropped.Add(uint64(n))
		return
	}
	ctx, cancel := p.ctx, context.CancelFunc(func() {})
	if p.cfg.ExportTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, p.cfg.ExportTimeout)
	}
	err := p.export(ctx, p.batch)
	cancel()
	if err != nil && p.onError != nil {
		p.onError(fmt.Errorf("exporting %d spans: %w", n, err))
	}
}

// reportDrops calls OnDrop when spans were dropped since its last call and
// that call is at least ScheduleDelay ago, or when final is set.
func (p *Processor) reportDrops(final bool) {
	total := p.dropped.Load()
	if p.cfg.OnDrop == nil || total == p.reported {
		return
	}
	now := p.cfg.Clock.Now()
	if !final && now.Sub(p.lastReport) < p.cfg.ScheduleDelay {
		return
	}
	p.cfg.OnDrop(total-p.reported, total)
	p.reported, p.lastReport = total, now
}
