package spanbatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
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

// drops records OnDrop calls, and whether two ever overlapped.
type drops struct {
	mu          sync.Mutex
	calls       [][2]uint64
	busy        atomic.Bool
	overlapping atomic.Bool
}

func (d *drops) onDrop(n, total uint64) {
	if d.busy.Swap(true) {
		d.overlapping.Store(true)
	}
	defer d.busy.Store(false)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, [2]uint64{n, total})
}

func (d *drops) get() [][2]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// check checks the calls so far against the contract, whatever their
// timing: never concurrent, each with a count that grew by n > 0, and at
// most max of them. It returns the last total (0 without calls).
func (d *drops) check(t *testing.T, max int) uint64 {
	t.Helper()
	calls := d.get()
	if d.overlapping.Load() {
		t.Error("concurrent OnDrop calls")
	}
	if len(calls) > max {
		t.Errorf("OnDrop calls = %v, want at most %d", calls, max)
	}
	var total uint64
	for _, c := range calls {
		if c[0] == 0 || c[1] != total+c[0] {
			t.Errorf("OnDrop calls = %v: (%d, %d) after total %d", calls, c[0], c[1], total)
		}
		total = c[1]
	}
	return total
}

// settled waits until OnDrop was called exactly as want says and the
// clock has cooling waiters (1 while the reporter waits ScheduleDelay
// after a call, 0 once it waits for a drop; the goroutine's timer must
// be stopped, as it is during a size export).
func (d *drops) settled(t *testing.T, fc *clocktesting.FakeClock, want [][2]uint64, cooling int) {
	t.Helper()
	eventually(t, fmt.Sprintf("OnDrop calls %v, %d clock waiters", want, cooling), func() bool {
		return slices.Equal(d.get(), want) && fc.Waiters() == cooling
	})
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
			// batches. The first drop was reported at once, with what was
			// counted by then; the fake clock stands still, so the rest
			// waited for Shutdown's last call.
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
			if last := d.check(t, 2); last != wantDropped {
				t.Errorf("OnDrop calls = %v, want the last total %d", d.get(), wantDropped)
			}
		})
	}
}

// blockingExporter's exports hang, ignoring their context, until the test
// closes release: a collector that accepts connections and never answers,
// behind a client that does not give up.
type blockingExporter struct {
	entered  chan []string // each export's span names
	release  chan struct{}
	returned atomic.Int32
}

func newBlockingExporter() *blockingExporter {
	return &blockingExporter{entered: make(chan []string, 16), release: make(chan struct{})}
}

func (e *blockingExporter) export(_ context.Context, sds []*trace.SpanData) error {
	var b []string
	for _, sd := range sds {
		b = append(b, sd.Name)
	}
	e.entered <- b
	<-e.release
	e.returned.Add(1)
	return nil
}

// next receives the span names of the next export to start.
func (e *blockingExporter) next(t *testing.T) []string {
	t.Helper()
	select {
	case b := <-e.entered:
		return b
	case <-time.After(guard):
		t.Fatal("no export")
		return nil
	}
}

// hang starts a Processor whose queue of 4 is full while its goroutine
// hangs in the export of 0-1; 2-5 are queued, and the next span drops.
func hang(t *testing.T, fc *clocktesting.FakeClock, d *drops) (*Processor, *blockingExporter) {
	t.Helper()
	e := newBlockingExporter()
	p := New(Config{
		MaxQueueSize: 4, MaxExportBatchSize: 2,
		ScheduleDelay: delay, ExportTimeout: NoExportTimeout, Clock: fc, OnDrop: d.onDrop,
	}, e.export, func(err error) { t.Errorf("export error: %v", err) })
	send(p, spans(0, 2))
	if got := e.next(t); !slices.Equal(got, names(0, 2)) {
		t.Fatalf("export = %v, want %v", got, names(0, 2))
	}
	send(p, spans(2, 6))
	return p, e
}

// TestDropReportsWhileExportHangs checks that drops are reported while an
// export hangs: the first at once, then at most once per schedule delay,
// and only when more spans were dropped.
func TestDropReportsWhileExportHangs(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var d drops
	p, e := hang(t, fc, &d)
	sent := 6
	steps := []struct {
		name    string
		drop    int           // spans sent to the full queue
		advance time.Duration // then the clock moves
		want    [2]uint64     // the call that follows; zero: none
		cooling bool          // the reporter waits ScheduleDelay after
	}{
		{name: "the first drop at once", drop: 1, want: [2]uint64{1, 1}, cooling: true},
		{name: "drops within the delay wait", drop: 2, advance: delay - time.Nanosecond, cooling: true},
		{name: "reported when it ends", advance: time.Nanosecond, want: [2]uint64{2, 3}, cooling: true},
		{name: "no drops within the delay: no call", advance: delay},
		{name: "the next drop at once", drop: 1, want: [2]uint64{1, 4}, cooling: true},
		{name: "and the next ones a delay later", drop: 3, advance: delay, want: [2]uint64{3, 7}, cooling: true},
		{name: "again no call without drops", advance: delay},
	}
	var want [][2]uint64
	for _, st := range steps {
		send(p, spans(sent, sent+st.drop))
		sent += st.drop
		fc.Step(st.advance)
		if st.want != ([2]uint64{}) {
			want = append(want, st.want)
		}
		cooling := 0
		if st.cooling {
			cooling = 1
		}
		d.settled(t, fc, want, cooling)
		if n := e.returned.Load(); n != 0 {
			t.Fatalf("%s: %d exports returned, want the first hanging", st.name, n)
		}
	}

	// A drop reported at once starts a delay; one during it is pending,
	// and drops pending at Shutdown make its last call, before it
	// returns. The queued spans are exported; later spans are only counted.
	send(p, spans(sent, sent+1))
	want = append(want, [2]uint64{1, 8})
	d.settled(t, fc, want, 1)
	send(p, spans(sent+1, sent+2))
	close(e.release)
	shutdown(t, p)
	want = append(want, [2]uint64{1, 9})
	if got := d.get(); !slices.Equal(got, want) {
		t.Errorf("OnDrop calls at Shutdown = %v, want %v", got, want)
	}
	for _, w := range [][]string{names(2, 4), names(4, 6)} {
		if got := e.next(t); !slices.Equal(got, w) {
			t.Errorf("export = %v, want %v", got, w)
		}
	}
	send(p, spans(0, 3))
	if got := p.Dropped(); got != 12 {
		t.Errorf("Dropped() = %d, want 12", got)
	}
	if got := d.get(); !slices.Equal(got, want) {
		t.Errorf("OnDrop calls after Shutdown = %v, want %v", got, want)
	}
	d.check(t, len(want))
}

// TestShutdownReportsWhileExportHangs checks that a Shutdown whose context
// ends while an export hangs reports the drops counted so far before it
// returns, and leaves no goroutine behind but the hanging export's.
func TestShutdownReportsWhileExportHangs(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		err     error
		pending int // spans dropped while the reporter waits ScheduleDelay
	}{
		{
			name: "cancelled, drops pending",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			err:     context.Canceled,
			pending: 2,
		},
		{
			name: "short deadline, drops pending",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Millisecond)
			},
			err:     context.DeadlineExceeded,
			pending: 3,
		},
		{
			name: "cancelled, all reported",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			err: context.Canceled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			others := goleak.IgnoreCurrent()
			fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
			var d drops
			p, e := hang(t, fc, &d)
			send(p, spans(6, 7))
			d.settled(t, fc, [][2]uint64{{1, 1}}, 1)
			send(p, spans(7, 7+tc.pending))
			want := [][2]uint64{{1, 1}}
			if tc.pending > 0 {
				want = append(want, [2]uint64{uint64(tc.pending), uint64(1 + tc.pending)})
			}

			ctx, cancel := tc.ctx()
			defer cancel()
			if err := p.Shutdown(ctx); !errors.Is(err, tc.err) {
				t.Fatalf("Shutdown() = %v, want %v", err, tc.err)
			}
			if got := d.get(); !slices.Equal(got, want) {
				t.Errorf("OnDrop calls at Shutdown = %v, want %v", got, want)
			}
			if n := fc.Waiters(); n != 0 {
				t.Errorf("%d clock waiters after Shutdown, want 0", n)
			}
			if err := goleak.Find(others, goleak.IgnoreAnyFunction(
				"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch.(*blockingExporter).export",
			)); err != nil {
				t.Errorf("goroutines besides the hanging export: %v", err)
			}
			if n := e.returned.Load(); n != 0 {
				t.Fatalf("%d exports returned, want the first hanging", n)
			}

			// Spans dropped after Shutdown returned, by ExportSpan or by
			// the abandoned goroutine (2-5, queued), are only counted.
			send(p, spans(0, 3))
			close(e.release)
			shutdown(t, p)
			if got, want := p.Dropped(), uint64(1+tc.pending+3+4); got != want {
				t.Errorf("Dropped() = %d, want %d", got, want)
			}
			if got := d.get(); !slices.Equal(got, want) {
				t.Errorf("OnDrop calls after Shutdown = %v, want %v", got, want)
			}
			if err := goleak.Find(others); err != nil {
				t.Errorf("goroutines left: %v", err)
			}
		})
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
// either exported or counted as dropped, and that OnDrop, racing with
// drops, clock steps and Shutdown, keeps its contract and has reported
// every drop counted before Shutdown began by the time it returns.
func TestShutdownRace(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	var r recorder
	var d drops
	p := New(Config{MaxQueueSize: 64, MaxExportBatchSize: 8, ScheduleDelay: delay, Clock: fc, OnDrop: d.onDrop}, r.export, nil)
	stepped := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(stepped)
		for {
			select {
			case <-stop:
				return
			default:
				fc.Step(delay)
				runtime.Gosched()
			}
		}
	}()
	const senders, each = 4, 500
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() { send(p, spans(0, each)) })
	}
	before := p.Dropped()
	shutdown(t, p)
	after := p.Dropped()
	wg.Wait()
	close(stop)
	<-stepped
	if got := uint64(r.spans) + p.Dropped(); got != senders*each {
		t.Errorf("exported %d + dropped %d = %d, want %d", r.spans, p.Dropped(), got, senders*each)
	}
	if last := d.check(t, math.MaxInt); last < before || last > after {
		t.Errorf("OnDrop's last total = %d, want %d..%d", last, before, after)
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
	// has counted the rest as dropped. Nothing was dropped before the
	// first Shutdown returned, so nothing was reported.
	shutdown(t, p)
	if got := p.Dropped(); got != 5 {
		t.Errorf("Dropped() = %d, want 5", got)
	}
	if got := d.get(); len(got) != 0 {
		t.Errorf("OnDrop calls = %v, want none", got)
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

	// The dropping benchmarks hang the exporter (until Shutdown cancels
	// it) and fill the queue of one; OnDrop is set, so that every drop
	// also tries to wake the reporter.
	dropping := func(b *testing.B) (*Processor, *atomic.Uint64) {
		reports := new(atomic.Uint64)
		hang := func(ctx context.Context, _ []*trace.SpanData) error { <-ctx.Done(); return nil }
		p := New(Config{
			MaxQueueSize: 1, MaxExportBatchSize: 1, ExportTimeout: NoExportTimeout,
			OnDrop: func(uint64, uint64) { reports.Add(1) },
		}, hang, nil)
		p.ExportSpan(sd) // hangs the exporter
		for len(p.queue) > 0 {
			runtime.Gosched()
		}
		p.ExportSpan(sd) // fills the queue
		return p, reports
	}
	stop := func(b *testing.B, p *Processor, reports *atomic.Uint64) {
		b.StopTimer()
		report(b, p, 0)
		b.ReportMetric(float64(reports.Load()), "reports")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.Shutdown(ctx) // cancels the hung export
		_ = p.Shutdown(context.Background())
	}

	b.Run("dropped", func(b *testing.B) {
		p, reports := dropping(b)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			p.ExportSpan(sd)
		}
		stop(b, p, reports)
	})

	b.Run("dropped parallel", func(b *testing.B) {
		p, reports := dropping(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.ExportSpan(sd)
			}
		})
		stop(b, p, reports)
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

// TestExportSpanAllocs checks that ExportSpan does not allocate, whether
// it queues a span or drops it (and wakes the reporter).
func TestExportSpanAllocs(t *testing.T) {
	sd := &trace.SpanData{Name: "span"}
	tests := []struct {
		name string
		// start returns a Processor in the state to measure, and a
		// function that ends the test.
		start func(t *testing.T) (*Processor, func())
	}{
		{
			name: "queued",
			start: func(t *testing.T) (*Processor, func()) {
				fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
				var d drops
				e := newBlockingExporter()
				p := New(Config{MaxQueueSize: 1000, ScheduleDelay: delay, Clock: fc, OnDrop: d.onDrop}, e.export, nil)
				return p, func() {
					close(e.release)
					shutdown(t, p)
				}
			},
		},
		{
			name: "dropped at a full queue",
			start: func(t *testing.T) (*Processor, func()) {
				fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
				var d drops
				p, e := hang(t, fc, &d)
				// The reporter has made its first call and waits out the
				// schedule delay: the fake clock keeps it waiting.
				p.ExportSpan(sd)
				d.settled(t, fc, [][2]uint64{{1, 1}}, 1)
				return p, func() {
					close(e.release)
					shutdown(t, p)
				}
			},
		},
		{
			name: "dropped after Shutdown",
			start: func(t *testing.T) (*Processor, func()) {
				var d drops
				p := New(Config{OnDrop: d.onDrop}, discard, nil)
				shutdown(t, p)
				return p, func() {}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, end := tc.start(t)
			defer end()
			if n := testing.AllocsPerRun(100, func() { p.ExportSpan(sd) }); n != 0 {
				t.Errorf("ExportSpan: %v allocations, want 0", n)
			}
		})
	}
}

// discard is an exporter that drops every batch.
func discard(context.Context, []*trace.SpanData) error { return nil }
