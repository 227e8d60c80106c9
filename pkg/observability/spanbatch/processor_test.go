package spanbatch

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opencensus.io/trace"
	"go.uber.org/goleak"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait of these tests in wall time. It only turns a
// hang into a failure: no test waits for it to pass.
const guard = 10 * time.Second

const delay = time.Second

// spans returns spans named from..to-1.
func spans(from, to int) []*trace.SpanData {
	var out []*trace.SpanData
	for i := from; i < to; i++ {
		out = append(out, &trace.SpanData{Name: strconv.Itoa(i)})
	}
	return out
}

// names returns the names of from..to-1, as spans named them.
func names(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func send(p *Processor, sds []*trace.SpanData) {
	for _, sd := range sds {
		p.ExportSpan(sd)
	}
}

// batch is one call of an exporter: the span names and the fake time.
type batch struct {
	names []string
	at    time.Time
}

// chanExporter hands every batch to the test through an unbuffered
// channel: an export lasts until the test receives it (or ctx ends), so
// the test decides when the processor's goroutine may go on.
type chanExporter struct {
	clk clock.PassiveClock
	got chan batch
}

func newChanExporter(clk clock.PassiveClock) *chanExporter {
	return &chanExporter{clk: clk, got: make(chan batch)}
}

func (e *chanExporter) export(ctx context.Context, sds []*trace.SpanData) error {
	b := batch{at: e.clk.Now()}
	for _, sd := range sds {
		b.names = append(b.names, sd.Name)
	}
	select {
	case e.got <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next receives the next batch.
func (e *chanExporter) next(t *testing.T) batch {
	t.Helper()
	select {
	case b := <-e.got:
		return b
	case <-time.After(guard):
		t.Fatal("no export")
		return batch{}
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// idle waits until the goroutine has taken every queued span and armed its
// timer: from then on only a clock step or a new span makes it act.
func idle(t *testing.T, p *Processor, fc *clocktesting.FakeClock) {
	t.Helper()
	eventually(t, "an empty queue and an armed timer", func() bool {
		return len(p.queue) == 0 && fc.Waiters() == 1
	})
}

// shutdown calls Shutdown with a guard.
func shutdown(t *testing.T, p *Processor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown() = %v", err)
	}
}

// drops records OnDrop calls.
type drops struct {
	mu    sync.Mutex
	calls [][2]uint64
}

func (d *drops) onDrop(n, total uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, [2]uint64{n, total})
}

func (d *drops) get() [][2]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

func TestBatchSizeAndScheduleDelay(t *testing.T) {
	tests := []struct {
		name         string
		queue, batch int
		spans        int
		// before is how far the clock moves between New and the spans.
		before time.Duration
	}{
		{name: "fewer than a batch: only the delay exports", queue: 16, batch: 4, spans: 3},
		{name: "exactly a batch: only the size exports", queue: 16, batch: 4, spans: 4},
		{name: "batches and a rest", queue: 16, batch: 4, spans: 10},
		{name: "batch of one", queue: 4, batch: 1, spans: 3},
		{name: "batch equal to queue", queue: 5, batch: 5, spans: 7},
		{name: "a size export restarts the delay", queue: 16, batch: 4, spans: 6, before: delay * 6 / 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1000, 0)
			fc := clocktesting.NewFakeClock(t0)
			exp := newChanExporter(fc)
			p := New(Config{
				MaxQueueSize: tc.queue, MaxExportBatchSize: tc.batch,
				ScheduleDelay: delay, ExportTimeout: NoExportTimeout, Clock: fc,
			}, exp.export, func(err error) { t.Errorf("export error: %v", err) })

			fc.Step(tc.before)
			// The queue holds every span: the exports below never drop.
			sent := 0
			full := tc.spans / tc.batch * tc.batch
			for sent < full {
				n := min(tc.queue, full-sent)
				send(p, spans(sent, sent+n))
				for ; n > 0; n -= tc.batch {
					got := exp.next(t)
					if want := names(sent, sent+tc.batch); !slices.Equal(got.names, want) || !got.at.Equal(fc.Now()) {
						t.Fatalf("size export = %v at %v, want %v at %v", got.names, got.at, want, fc.Now())
					}
					sent += tc.batch
				}
			}
			send(p, spans(sent, tc.spans))
			idle(t, p, fc)

			// One step short of the delay: the timer has not fired. Had
			// it fired with spans batched, the goroutine would be blocked
			// in the export, and its timer not re-armed.
			fc.Step(delay - time.Nanosecond)
			if fc.Waiters() != 1 {
				t.Fatal("the schedule delay fired early")
			}
			fc.Step(time.Nanosecond)
			if sent < tc.spans {
				got := exp.next(t)
				if want := names(sent, tc.spans); !slices.Equal(got.names, want) || !got.at.Equal(t0.Add(tc.before+delay)) {
					t.Fatalf("delay export = %v at %v, want %v at %v", got.names, got.at, want, t0.Add(tc.before+delay))
				}
			}

			shut := make(chan error, 1)
			go func() { shut <- p.Shutdown(context.Background()) }()
			for waiting := true; waiting; {
				select {
				case b := <-exp.got:
					t.Errorf("export at Shutdown with nothing queued: %v", b.names)
				case err := <-shut:
					if err != nil {
						t.Errorf("Shutdown() = %v", err)
					}
					waiting = false
				case <-time.After(guard):
					t.Fatal("Shutdown hung")
				}
			}
			if p.Dropped() != 0 {
				t.Errorf("Dropped() = %d, want 0", p.Dropped())
			}
		})
	}
}

func TestFullQueueNeverBlocks(t *testing.T) {
	tests := []struct {
		name                string
		queue, batch, flood int
	}{
		{name: "large flood", queue: 4, batch: 2, flood: 10000},
		{name: "queue of one", queue: 1, batch: 1, flood: 50},
		{name: "flood fits", queue: 8, batch: 3, flood: 8},
		{name: "one too many", queue: 8, batch: 3, flood: 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
			exp := newChanExporter(fc)
			var d drops
			p := New(Config{
				MaxQueueSize: tc.queue, MaxExportBatchSize: tc.batch,
				ScheduleDelay: delay, ExportTimeout: NoExportTimeout, Clock: fc, OnDrop: d.onDrop,
			}, exp.export, nil)

			// The goroutine takes one batch and blocks in the export.
			send(p, spans(0, tc.batch))
			eventually(t, "the first batch taken", func() bool { return len(p.queue) == 0 })

			flooded := make(chan struct{})
			go func() {
				defer close(flooded)
				send(p, spans(tc.batch, tc.batch+tc.flood))
			}()
			select {
			case <-flooded:
			case <-time.After(guard):
				t.Fatal("ExportSpan blocked on a full queue")
			}
			queued := min(tc.flood, tc.queue)
			wantDropped := uint64(tc.flood - queued)
			if got := p.Dropped(); got != wantDropped {
				t.Errorf("Dropped() = %d, want %d", got, wantDropped)
			}

			// Shutdown exports the first batch and the queued spans, in
			// batches, and reports the drops once.
			shut := make(chan error, 1)
			go func() { shut <- p.Shutdown(context.Background()) }()
			var got []string
			for want := tc.batch + queued; len(got) < want; {
				b := exp.next(t)
				if len(b.names) > tc.batch {
					t.Errorf("batch of %d spans, want at most %d", len(b.names), tc.batch)
				}
				got = append(got, b.names...)
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown() = %v", err)
			}
			if want := names(0, tc.batch+queued); !slices.Equal(got, want) {
				t.Errorf("exported %v, want %v", got, want)
			}
			var wantCalls [][2]uint64
			if wantDropped > 0 {
				wantCalls = [][2]uint64{{wantDropped, wantDropped}}
			}
			if calls := d.get(); !slices.Equal(calls, wantCalls) {
				t.Errorf("OnDrop calls = %v, want %v", calls, wantCalls)
			}
		})
	}
}

// TestDropReports checks that drops are reported at most once per
// schedule delay, not per span, and that spans after Shutdown are counted.
func TestDropReports(t *testing.T) {
	t0 := time.Unix(1000, 0)
	fc := clocktesting.NewFakeClock(t0)
	exp := newChanExporter(fc)
	var d drops
	p := New(Config{
		MaxQueueSize: 4, MaxExportBatchSize: 3,
		ScheduleDelay: delay, ExportTimeout: NoExportTimeout, Clock: fc, OnDrop: d.onDrop,
	}, exp.export, nil)
	expect := func(want []string, at time.Duration, calls ...[2]uint64) {
		t.Helper()
		b := exp.next(t)
		if !slices.Equal(b.names, want) || !b.at.Equal(t0.Add(at)) {
			t.Fatalf("export = %v at %v, want %v at %v", b.names, b.at, want, t0.Add(at))
		}
		// A report comes before the export it precedes, so this is exact.
		if got := d.get(); !slices.Equal(got, calls) {
			t.Fatalf("OnDrop calls = %v, want %v", got, calls)
		}
	}

	// Phase 1: 0-2 block the exporter, 3-6 fill the queue, 7-12 drop.
	send(p, spans(0, 3))
	eventually(t, "the first batch taken", func() bool { return len(p.queue) == 0 })
	send(p, spans(3, 13))
	expect(names(0, 3), 0)
	expect(names(3, 6), 0) // a size export before the delay: no report
	idle(t, p, fc)
	fc.Step(delay)
	expect(names(6, 7), delay, [2]uint64{6, 6})

	// Phase 2, half a delay later: 13-15 block the exporter, 16-19 fill
	// the queue, 20-21 drop; the size exports are too soon for a report.
	idle(t, p, fc)
	fc.Step(delay / 2)
	send(p, spans(13, 16))
	eventually(t, "the batch taken", func() bool { return len(p.queue) == 0 })
	send(p, spans(16, 22))
	expect(names(13, 16), delay*3/2, [2]uint64{6, 6})
	expect(names(16, 19), delay*3/2, [2]uint64{6, 6})
	idle(t, p, fc)
	fc.Step(delay - time.Nanosecond)
	if fc.Waiters() != 1 {
		t.Fatal("the schedule delay fired early")
	}
	fc.Step(time.Nanosecond)
	expect(names(19, 20), delay*5/2, [2]uint64{6, 6}, [2]uint64{2, 8})

	// Phase 3: after Shutdown spans are counted, not reported.
	shutdown(t, p)
	send(p, spans(22, 25))
	if got := p.Dropped(); got != 11 {
		t.Errorf("Dropped() = %d, want 11", got)
	}
	if got, want := d.get(), [][2]uint64{{6, 6}, {2, 8}}; !slices.Equal(got, want) {
		t.Errorf("OnDrop calls = %v, want %v", got, want)
	}
}

// recorder is an exporter that records and returns at once.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	spans   int
}

func (r *recorder) export(_ context.Context, sds []*trace.SpanData) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b []string
	for _, sd := range sds {
		b = append(b, sd.Name)
	}
	r.batches = append(r.batches, b)
	r.spans += len(sds)
	return nil
}

func TestShutdownFlushes(t *testing.T) {
	tests := []struct {
		name         string
		queue, batch int
		spans        int
	}{
		{name: "nothing", queue: 16, batch: 4, spans: 0},
		{name: "one span", queue: 16, batch: 4, spans: 1},
		{name: "one batch", queue: 16, batch: 4, spans: 4},
		{name: "batches and a rest", queue: 16, batch: 4, spans: 14},
		{name: "a full queue", queue: 16, batch: 5, spans: 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
			var r recorder
			p := New(Config{
				MaxQueueSize: tc.queue, MaxExportBatchSize: tc.batch, ScheduleDelay: delay, Clock: fc,
			}, r.export, func(err error) { t.Errorf("export error: %v", err) })
			send(p, spans(0, tc.spans))
			p.ExportSpan(nil) // ignored, not counted
			shutdown(t, p)

			var want [][]string
			for i := 0; i < tc.spans; i += tc.batch {
				want = append(want, names(i, min(i+tc.batch, tc.spans)))
			}
			if !slices.EqualFunc(r.batches, want, slices.Equal) {
				t.Errorf("batches = %v, want %v", r.batches, want)
			}
			if p.Dropped() != 0 {
				t.Errorf("Dropped() = %d, want 0", p.Dropped())
			}
			p.ExportSpan(spans(0, 1)[0])
			if err := p.Shutdown(context.Background()); err != nil {
				t.Errorf("second Shutdown() = %v", err)
			}
			if p.Dropped() != 1 || len(r.batches) != len(want) {
				t.Errorf("after Shutdown: Dropped() = %d, %d batches; want 1, %d", p.Dropped(), len(r.batches), len(want))
			}
		})
	}
}

// TestShutdownRace checks that every span sent while Shutdown runs is
// either exported or counted as dropped.
func TestShutdownRace(t *testing.T) {
	var r recorder
	p := New(Config{MaxQueueSize: 64, MaxExportBatchSize: 8}, r.export, nil)
	const senders, each = 4, 500
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() { send(p, spans(0, each)) })
	}
	shutdown(t, p)
	wg.Wait()
	if got := uint64(r.spans) + p.Dropped(); got != senders*each {
		t.Errorf("exported %d + dropped %d = %d, want %d", r.spans, p.Dropped(), got, senders*each)
	}
}

// hungExporter blocks until its context ends.
type hungExporter struct {
	entered chan struct{}
	mu      sync.Mutex
	calls   int
	errs    []error
}

func (e *hungExporter) export(ctx context.Context, _ []*trace.SpanData) error {
	e.mu.Lock()
	e.calls++
	e.mu.Unlock()
	e.entered <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

func (e *hungExporter) onError(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
}

func TestShutdownDeadlineWithHungExporter(t *testing.T) {
	e := &hungExporter{entered: make(chan struct{}, 1)}
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var d drops
	p := New(Config{
		MaxQueueSize: 10, MaxExportBatchSize: 2, ExportTimeout: NoExportTimeout, Clock: fc, OnDrop: d.onDrop,
	}, e.export, e.onError)
	send(p, spans(0, 2))
	<-e.entered
	send(p, spans(2, 7))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown() = %v, want %v", err, context.DeadlineExceeded)
	}
	// The hung export was cancelled; waiting again ends once the goroutine
	// has counted the rest as dropped.
	shutdown(t, p)
	if got := p.Dropped(); got != 5 {
		t.Errorf("Dropped() = %d, want 5", got)
	}
	if got, want := d.get(), [][2]uint64{{5, 5}}; !slices.Equal(got, want) {
		t.Errorf("OnDrop calls = %v, want %v", got, want)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.calls != 1 || len(e.errs) != 1 || !errors.Is(e.errs[0], context.Canceled) {
		t.Errorf("exports = %d, errors = %v; want 1 export failing with %v", e.calls, e.errs, context.Canceled)
	}
}

func TestExportTimeout(t *testing.T) {
	type call struct {
		deadline bool
		err      error
	}
	calls := make(chan call, 2)
	export := func(ctx context.Context, sds []*trace.SpanData) error {
		_, ok := ctx.Deadline()
		if sds[0].Name == "0" { // the first export hangs
			<-ctx.Done()
		}
		calls <- call{ok, ctx.Err()}
		return ctx.Err()
	}
	errs := make(chan error, 2)
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	p := New(Config{MaxQueueSize: 4, MaxExportBatchSize: 2, ExportTimeout: 10 * time.Millisecond, Clock: fc},
		export, func(err error) { errs <- err })
	send(p, spans(0, 4))
	shutdown(t, p)

	for i, want := range []call{{true, context.DeadlineExceeded}, {true, nil}} {
		if got := <-calls; got != want {
			t.Errorf("export %d: deadline %v, ctx error %v; want %v, %v", i, got.deadline, got.err, want.deadline, want.err)
		}
	}
	if err := <-errs; !errors.Is(err, context.DeadlineExceeded) || err.Error() != "exporting 2 spans: context deadline exceeded" {
		t.Errorf("onError(%v), want the timeout of 2 spans", err)
	}
	if len(errs) != 0 {
		t.Errorf("onError(%v) after a successful export", <-errs)
	}
}

// BenchmarkExportSpan measures the request path's cost: queueing a span
// while the goroutine exports (the clock stops while it catches up, so
// that no span is dropped), dropping one at a full queue, and both from
// parallel callers, who drop most spans as they outrun the goroutine.
func BenchmarkExportSpan(b *testing.B) {
	sd := &trace.SpanData{Name: "span"}
	discard := func(context.Context, []*trace.SpanData) error { return nil }
	report := func(b *testing.B, p *Processor, before uint64) {
		b.ReportMetric(float64(p.Dropped()-before)/float64(b.N), "drops/op")
	}

	b.Run("queued", func(b *testing.B) {
		p := New(Config{}, discard, nil)
		b.ReportAllocs()
		for i := range b.N {
			if i%DefaultMaxQueueSize == DefaultMaxQueueSize-1 {
				b.StopTimer()
				for len(p.queue) > 0 {
					runtime.Gosched()
				}
				b.StartTimer()
			}
			p.ExportSpan(sd)
		}
		report(b, p, 0)
		_ = p.Shutdown(context.Background())
	})

	b.Run("dropped", func(b *testing.B) {
		hang := func(ctx context.Context, _ []*trace.SpanData) error { <-ctx.Done(); return nil }
		p := New(Config{MaxQueueSize: 1, MaxExportBatchSize: 1, ExportTimeout: NoExportTimeout}, hang, nil)
		p.ExportSpan(sd) // hangs the exporter
		for len(p.queue) > 0 {
			runtime.Gosched()
		}
		p.ExportSpan(sd) // fills the queue
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			p.ExportSpan(sd)
		}
		b.StopTimer()
		report(b, p, 0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.Shutdown(ctx) // cancels the hung export
		_ = p.Shutdown(context.Background())
	})

	b.Run("parallel", func(b *testing.B) {
		p := New(Config{}, discard, nil)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.ExportSpan(sd)
			}
		})
		b.StopTimer()
		report(b, p, 0)
		_ = p.Shutdown(context.Background())
	})
}
