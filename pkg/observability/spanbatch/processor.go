// Package spanbatch batches OpenCensus spans for export the way the
// OpenTelemetry Go SDK's batch span processor (v1.47.0) batches OTel spans:
// a bounded queue that drops when full, batches of MaxExportBatchSize or
// whatever waited ScheduleDelay, one export at a time, each bounded by
// ExportTimeout, and a flush at Shutdown. The OTEL_BSP_* variables tune it
// (ConfigFromEnv).
//
// Unlike the SDK, it reports dropped spans (Config.OnDrop), and it does so
// from a goroutine of its own, independently of the exports: a drop is
// reported at once, or at most ScheduleDelay after the previous report,
// even while an export hangs until ExportTimeout.
package spanbatch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

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
	batch []*trace.SpanData
	timer clock.Timer

	// The reporter, a goroutine that calls OnDrop; all nil without OnDrop.
	// ExportSpan wakes it through dropSignal (non-blocking: one pending
	// wake-up is enough, as it reads the count when it runs); Shutdown
	// closes stopReport, and it closes reportDone when it has made its
	// last call and exited.
	dropSignal chan struct{}
	stopReport chan struct{}
	reportDone chan struct{}
	stopOnce   sync.Once
	reported   uint64 // owned by the reporter: the total at its last call
}

var _ trace.Exporter = (*Processor)(nil)

// New starts a Processor that exports through export and reports failed
// exports to onError (nil: ignored). Shutdown stops it.
func New(cfg Config, export ExportFunc, onError func(error)) *Processor {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Processor{
		cfg:     cfg,
		export:  export,
		onError: onError,
		queue:   make(chan *trace.SpanData, cfg.MaxQueueSize),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		batch:   make([]*trace.SpanData, 0, cfg.MaxExportBatchSize),
		timer:   cfg.Clock.NewTimer(cfg.ScheduleDelay),
	}
	if cfg.OnDrop != nil {
		p.dropSignal = make(chan struct{}, 1)
		p.stopReport = make(chan struct{})
		p.reportDone = make(chan struct{})
		go p.report()
	}
	go p.run()
	return p
}

// ExportSpan implements trace.Exporter: it queues sd, or drops and counts
// it when the queue is full or the Processor is shut down. It never blocks
// and does not allocate.
func (p *Processor) ExportSpan(sd *trace.SpanData) {
	if sd == nil {
		return
	}
	queued := false
	p.mu.RLock()
	if !p.stopped {
		select {
		case p.queue <- sd:
			queued = true
		default:
		}
	}
	if !queued {
		p.dropped.Add(1)
	}
	p.mu.RUnlock()
	if !queued {
		// Wake the reporter, unless a wake-up is already pending (or
		// there is no reporter: a send on a nil channel never proceeds).
		select {
		case p.dropSignal <- struct{}{}:
		default:
		}
	}
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
//
// Whichever way Shutdown returns, OnDrop has had its last call by then
// (when the count grew since the previous one) and the reporter goroutine
// has exited: Shutdown waits for it, and so for an OnDrop call in
// progress. The last call counts the spans dropped until the goroutine
// exited or, when ctx ended first, until that moment; spans dropped later,
// by ExportSpan or by the abandoned goroutine, are only counted (Dropped).
// Once Shutdown returns nil no goroutine of the Processor remains; once it
// returns ctx's error, at most the one in an export that ignores its
// context.
func (p *Processor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.queue)
	}
	p.mu.Unlock()

	select {
	case <-p.done:
		p.stopReporter()
		return nil
	default:
	}
	select {
	case <-p.done:
		p.stopReporter()
		return nil
	case <-ctx.Done():
		// Report first: the spans the cancelled goroutine is about to
		// count as dropped are left out of the last report, always.
		p.stopReporter()
		p.cancel()
		return ctx.Err()
	}
}

// stopReporter has the reporter make its last call and exit, and waits
// until it has.
func (p *Processor) stopReporter() {
	if p.stopReport == nil {
		return
	}
	p.stopOnce.Do(func() { close(p.stopReport) })
	<-p.reportDone
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
				return
			}
			p.batch = append(p.batch, sd)
			if len(p.batch) >= p.cfg.MaxExportBatchSize {
				p.stopTimer()
				p.exportBatch()
				p.timer.Reset(p.cfg.ScheduleDelay)
			}
		case <-p.timer.C():
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

// report is the reporter goroutine. Woken by a drop, it calls OnDrop at
// once; after a call it lets ScheduleDelay pass (on cfg.Clock) before it
// takes the next wake-up, so that drops during that time make one call
// at its end. Stopped, it makes a last call and exits.
func (p *Processor) report() {
	defer close(p.reportDone)
	var cooldown clock.Timer // created at the first call, then reused
	defer func() {
		if cooldown != nil {
			cooldown.Stop()
		}
	}()
	for {
		select {
		case <-p.dropSignal:
		case <-p.stopReport:
			p.reportDrops()
			return
		}
		if !p.reportDrops() {
			continue // the previous call counted the drop that woke us
		}
		if cooldown == nil {
			cooldown = p.cfg.Clock.NewTimer(p.cfg.ScheduleDelay)
		} else {
			cooldown.Reset(p.cfg.ScheduleDelay)
		}
		select {
		case <-cooldown.C():
		case <-p.stopReport:
			p.reportDrops()
			return
		}
	}
}

// reportDrops calls OnDrop if spans were dropped since its last call, and
// says whether it did. Only the reporter calls it.
func (p *Processor) reportDrops() bool {
	total := p.dropped.Load()
	if total == p.reported {
		return false
	}
	p.cfg.OnDrop(total-p.reported, total)
	p.reported = total
	return true
}
