package queue

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// breakerState is a consistent snapshot of a Breaker's counters.
type breakerState struct{ inFlight, running, waiting, capacity int }

func (b *Breaker) snapshot() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for w := b.head; w != nil; w = w.next {
		n++
	}
	if n != b.waiting {
		panic("waiter list length differs from waiting counter")
	}
	return breakerState{b.inFlight, b.running, b.waiting, b.capacity}
}

// breakerQueuedSignal installs an onQueued hook on b and returns the channel it
// signals on. Must be called before b is used concurrently.
func breakerQueuedSignal(b *Breaker) <-chan struct{} {
	ch := make(chan struct{}, 1024)
	b.onQueued = func() { ch <- struct{}{} }
	return ch
}

// breakerHolder is a request that occupies a running slot until released.
type breakerHolder struct {
	started chan struct{}
	finish  chan struct{}
	done    chan error
}

// hold starts a Maybe whose thunk blocks until h.finish is closed.
func breakerHold(ctx context.Context, b *Breaker) *breakerHolder {
	h := &breakerHolder{started: make(chan struct{}), finish: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		h.done <- b.Maybe(ctx, func() {
			close(h.started)
			<-h.finish
		})
	}()
	return h
}

// breakerHoldRunning starts a breakerHolder and waits until its thunk runs.
func breakerHoldRunning(t *testing.T, b *Breaker) *breakerHolder {
	t.Helper()
	h := breakerHold(context.Background(), b)
	<-h.started
	return h
}

func (h *breakerHolder) release(t *testing.T) {
	t.Helper()
	close(h.finish)
	if err := <-h.done; err != nil {
		t.Fatalf("breakerHolder Maybe = %v, want nil", err)
	}
}

func TestNewBreakerPanics(t *testing.T) {
	tests := []struct {
		name   string
		params BreakerParams
		want   []string // substrings of the panic message; nil: no panic
	}{
		{"valid", BreakerParams{QueueDepth: 1, MaxConcurrency: 1, InitialCapacity: 1}, nil},
		{"valid zero capacity", BreakerParams{QueueDepth: 1, MaxConcurrency: 0, InitialCapacity: 0}, nil},
		{"valid max", BreakerParams{QueueDepth: 1, MaxConcurrency: MaxBreakerCapacity, InitialCapacity: 5}, nil},
		{"zero queue depth", BreakerParams{QueueDepth: 0, MaxConcurrency: 1, InitialCapacity: 1}, []string{"QueueDepth", "got 0"}},
		{"negative queue depth", BreakerParams{QueueDepth: -3, MaxConcurrency: 1, InitialCapacity: 1}, []string{"QueueDepth", "got -3"}},
		{"negative max concurrency", BreakerParams{QueueDepth: 1, MaxConcurrency: -1, InitialCapacity: 0}, []string{"MaxConcurrency", "got -1"}},
		{"negative initial capacity", BreakerParams{QueueDepth: 1, MaxConcurrency: 1, InitialCapacity: -2}, []string{"InitialCapacity", "got -2"}},
		{"initial capacity above max", BreakerParams{QueueDepth: 1, MaxConcurrency: 4, InitialCapacity: 5}, []string{"InitialCapacity", "MaxConcurrency=4", "got 5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			func() {
				defer func() { got = recover() }()
				NewBreaker(tc.params)
			}()
			if tc.want == nil {
				if got != nil {
					t.Fatalf("NewBreaker(%+v) panicked: %v", tc.params, got)
				}
				return
			}
			msg, ok := got.(string)
			if !ok {
				t.Fatalf("NewBreaker(%+v) panic = %#v, want a string", tc.params, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("panic message %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestBreakerInitialState(t *testing.T) {
	b := NewBreaker(BreakerParams{QueueDepth: 10, MaxConcurrency: 5, InitialCapacity: 3})
	if got := b.Capacity(); got != 3 {
		t.Errorf("Capacity() = %d, want 3", got)
	}
	if got := b.InFlight(); got != 0 {
		t.Errorf("InFlight() = %d, want 0", got)
	}
}

func TestBreakerCapacityAndOverflow(t *testing.T) {
	tests := []struct {
		name       string
		queueDepth int
		capacity   int
	}{
		{"cc1 depth1", 1, 1},
		{"cc2 depth20", 20, 2},
		{"cc3 depth1", 1, 3},
		{"cc0 depth2", 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBreaker(BreakerParams{QueueDepth: tc.queueDepth, MaxConcurrency: tc.capacity, InitialCapacity: tc.capacity})
			queued := breakerQueuedSignal(b)

			holders := make([]*breakerHolder, 0, tc.capacity)
			for range tc.capacity {
				holders = append(holders, breakerHoldRunning(t, b))
			}
			if got := b.snapshot(); got.running != tc.capacity || got.inFlight != tc.capacity || got.waiting != 0 {
				t.Fatalf("after filling running slots: %+v", got)
			}

			ctx, cancel := context.WithCancel(context.Background())
			waiters := make([]*breakerHolder, 0, tc.queueDepth)
			for range tc.queueDepth {
				waiters = append(waiters, breakerHold(ctx, b))
				<-queued
			}
			want := breakerState{inFlight: tc.capacity + tc.queueDepth, running: tc.capacity, waiting: tc.queueDepth, capacity: tc.capacity}
			if got := b.snapshot(); got != want {
				t.Fatalf("after filling queue: %+v, want %+v", got, want)
			}
			if got := b.InFlight(); got != want.inFlight {
				t.Errorf("InFlight() = %d, want %d", got, want.inFlight)
			}

			// Full: immediate rejection, even with a context that never ends,
			// and the thunk does not run.
			ran := false
			if err := b.Maybe(context.Background(), func() { ran = true }); !errors.Is(err, ErrRequestQueueFull) {
				t.Fatalf("Maybe on full breaker = %v, want ErrRequestQueueFull", err)
			}
			if ran {
				t.Error("thunk ran on a full breaker")
			}
			if err := ErrRequestQueueFull.Error(); err != "pending request queue full" {
				t.Errorf("ErrRequestQueueFull text = %q", err)
			}
			if got := b.snapshot(); got != want {
				t.Fatalf("rejection changed state: %+v, want %+v", got, want)
			}

			// Cancel the waiters: all return ctx.Err() and give back their slots.
			cancel()
			for i, w := range waiters {
				if err := <-w.done; !errors.Is(err, context.Canceled) {
					t.Errorf("waiter %d: Maybe = %v, want context.Canceled", i, err)
				}
				select {
				case <-w.started:
					t.Errorf("waiter %d: thunk ran after cancellation", i)
				default:
				}
			}
			for _, h := range holders {
				h.release(t)
			}
			if got := b.snapshot(); got != (breakerState{capacity: tc.capacity}) {
				t.Fatalf("final state %+v, want empty", got)
			}
		})
	}
}

// TestBreakerFIFO queues waiters one by one (each observed queued before
// the next arrives) and checks that they run in arrival order, for several
// capacities.
func TestBreakerFIFO(t *testing.T) {
	for _, capacity := range []int{1, 2, 5} {
		t.Run("cc"+strconv.Itoa(capacity), func(t *testing.T) {
			const n = 50
			b := NewBreaker(BreakerParams{QueueDepth: n + 1, MaxConcurrency: capacity, InitialCapacity: capacity})
			queued := breakerQueuedSignal(b)

			holders := make([]*breakerHolder, capacity)
			for i := range holders {
				holders[i] = breakerHoldRunning(t, b)
			}
			order := make(chan int, n+1)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := b.Maybe(context.Background(), func() { order <- i }); err != nil {
						t.Errorf("waiter %d: %v", i, err)
					}
				}()
				<-queued
			}
			// A newcomer arriving while others queue must queue behind them.
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.Maybe(context.Background(), func() { order <- n }); err != nil {
					t.Errorf("late waiter: %v", err)
				}
			}()
			<-queued
			for _, h := range holders {
				h.release(t)
			}
			wg.Wait()
			close(order)

			// With capacity > 1 thunks may record out of order after they were
			// admitted in order; with capacity 1 the order is exact.
			got := make([]int, 0, n+1)
			for i := range order {
				got = append(got, i)
			}
			if len(got) != n+1 {
				t.Fatalf("ran %d thunks, want %d", len(got), n+1)
			}
			if capacity == 1 {
				for i, v := range got {
					if v != i {
						t.Fatalf("run order %v, want 0..%d in order", got, n)
					}
				}
			}
			if st := b.snapshot(); st != (breakerState{capacity: capacity}) {
				t.Fatalf("final state %+v, want empty", st)
			}
		})
	}
}

// TestBreakerFIFOAdmissionOrder checks admission order for capacity > 1:
// each admitted thunk blocks, so the set running at any moment is exactly
// the next waiters in arrival order.
func TestBreakerFIFOAdmissionOrder(t *testing.T) {
	const capacity, n = 3, 12
	b := NewBreaker(BreakerParams{QueueDepth: n, MaxConcurrency: capacity, InitialCapacity: capacity})
	queued := breakerQueuedSignal(b)

	holders := make([]*breakerHolder, capacity)
	for i := range holders {
		holders[i] = breakerHoldRunning(t, b)
	}
	waiters := make([]*breakerHolder, n)
	for i := range waiters {
		waiters[i] = breakerHold(context.Background(), b)
		<-queued
	}
	// Release one slot at a time; exactly waiter i must start.
	running := holders
	for i := range waiters {
		running[0].release(t)
		running = running[1:]
		<-waiters[i].started
		for j := i + 1; j < n; j++ {
			select {
			case <-waiters[j].started:
				t.Fatalf("waiter %d started before waiter %d", j, i)
			default:
			}
		}
		running = append(running, waiters[i])
	}
	for _, h := range running {
		h.release(t)
	}
	if st := b.snapshot(); st != (breakerState{capacity: capacity}) {
		t.Fatalf("final state %+v, want empty", st)
	}
}

func TestBreakerCancelWhileQueued(t *testing.T) {
	tests := []struct {
		name   string
		n      int   // waiters queued
		cancel []int // which of them are cancelled
	}{
		{"only waiter", 1, []int{0}},
		{"head", 3, []int{0}},
		{"middle", 3, []int{1}},
		{"tail", 3, []int{2}},
		{"head and tail", 4, []int{0, 3}},
		{"all", 3, []int{0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBreaker(BreakerParams{QueueDepth: tc.n, MaxConcurrency: 1, InitialCapacity: 1})
			queued := breakerQueuedSignal(b)
			h := breakerHoldRunning(t, b)

			cancels := make([]context.CancelFunc, tc.n)
			waiters := make([]*breakerHolder, tc.n)
			for i := range waiters {
				var ctx context.Context
				ctx, cancels[i] = context.WithCancel(context.Background())
				defer cancels[i]()
				waiters[i] = breakerHold(ctx, b)
				<-queued
			}
			cancelled := map[int]bool{}
			for _, i := range tc.cancel {
				cancels[i]()
				cancelled[i] = true
				if err := <-waiters[i].done; !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled waiter %d: Maybe = %v, want context.Canceled", i, err)
				}
			}
			left := tc.n - len(tc.cancel)
			want := breakerState{inFlight: 1 + left, running: 1, waiting: left, capacity: 1}
			if got := b.snapshot(); got != want {
				t.Fatalf("after cancel: %+v, want %+v", got, want)
			}
			// The freed admission slot is usable again: queue one more.
			extra := breakerHold(context.Background(), b)
			<-queued

			// Remaining waiters run one at a time, in order, then the extra.
			h.release(t)
			for i, w := range waiters {
				if cancelled[i] {
					continue
				}
				<-w.started
				w.release(t)
			}
			<-extra.started
			extra.release(t)
			for i, w := range waiters {
				if cancelled[i] {
					select {
					case <-w.started:
						t.Errorf("cancelled waiter %d ran", i)
					default:
					}
				}
			}
			if got := b.snapshot(); got != (breakerState{capacity: 1}) {
				t.Fatalf("final state %+v, want empty", got)
			}
		})
	}
}

// TestBreakerHandoffRacesCancel makes a slot handoff and a cancellation
// both ready before the waiter looks at either, so its select picks one at
// random. Either way the slot must not be lost: it ends with the next
// waiter. Both outcomes must be observed across iterations.
func TestBreakerHandoffRacesCancel(t *testing.T) {
	const iterations = 300
	var ranCount, cancelledCount int
	for range iterations {
		b := NewBreaker(BreakerParams{QueueDepth: 2, MaxConcurrency: 1, InitialCapacity: 1})
		queued := make(chan struct{}, 2)
		gate := make(chan struct{})
		var calls atomic.Int32
		b.onQueued = func() {
			queued <- struct{}{}
			if calls.Add(1) == 1 {
				<-gate // the first waiter pauses before its select
			}
		}
		h := breakerHoldRunning(t, b)

		ctx, cancel := context.WithCancel(context.Background())
		firstRan := false
		firstDone := make(chan error, 1)
		go func() { firstDone <- b.Maybe(ctx, func() { firstRan = true }) }()
		<-queued
		second := breakerHold(context.Background(), b)
		<-queued

		h.release(t) // hands the slot to the first waiter
		cancel()
		if got := b.snapshot(); got != (breakerState{inFlight: 2, running: 1, waiting: 1, capacity: 1}) {
			t.Fatalf("after handoff: %+v", got)
		}
		close(gate)

		switch err := <-firstDone; {
		case err == nil:
			ranCount++
			if !firstRan {
				t.Fatal("Maybe returned nil without running the thunk")
			}
		case errors.Is(err, context.Canceled):
			cancelledCount++
			if firstRan {
				t.Fatal("thunk ran although Maybe returned an error")
			}
		default:
			t.Fatalf("first waiter: %v", err)
		}
		// Whatever happened, the slot now belongs to the second waiter.
		if got := b.snapshot(); got != (breakerState{inFlight: 1, running: 1, capacity: 1}) {
			t.Fatalf("after first waiter returned: %+v, want the slot with the second waiter", got)
		}
		<-second.started
		second.release(t)
		if got := b.snapshot(); got != (breakerState{capacity: 1}) {
			t.Fatalf("final state %+v, want empty", got)
		}
	}
	if ranCount == 0 || cancelledCount == 0 {
		t.Errorf("outcomes: ran=%d cancelled=%d; both paths must be exercised", ranCount, cancelledCount)
	}
}

// TestBreakerCancelRaceStress races releases against cancellations
// without any ordering and checks that capacity is conserved.
func TestBreakerCancelRaceStress(t *testing.T) {
	const iterations = 500
	for range iterations {
		b := NewBreaker(BreakerParams{QueueDepth: 3, MaxConcurrency: 1, InitialCapacity: 1})
		queued := breakerQueuedSignal(b)
		h := breakerHoldRunning(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		a := breakerHold(ctx, b)
		<-queued
		c := breakerHold(context.Background(), b)
		<-queued

		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); <-start; close(h.finish) }()
		go func() { defer wg.Done(); <-start; cancel() }()
		close(start)
		wg.Wait()
		if err := <-h.done; err != nil {
			t.Fatal(err)
		}
		close(a.finish)
		if err := <-a.done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("a: %v", err)
		}
		// Slot conservation: only c holds a slot now.
		if got := b.snapshot(); got != (breakerState{inFlight: 1, running: 1, capacity: 1}) {
			t.Fatalf("after breakerHolder and a returned: %+v, want the slot with c", got)
		}
		<-c.started
		c.release(t)
		if got := b.snapshot(); got != (breakerState{capacity: 1}) {
			t.Fatalf("final state %+v, want empty", got)
		}
	}
}

// TestBreakerConcurrencyLimitStress runs many goroutines with random
// cancellation and checks that the running limit is never exceeded and
// every slot comes back.
func TestBreakerConcurrencyLimitStress(t *testing.T) {
	const capacity, workers, perWorker = 3, 32, 50
	b := NewBreaker(BreakerParams{QueueDepth: workers, MaxConcurrency: capacity, InitialCapacity: capacity})
	var running, peak, ran atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				ctx, cancel := context.WithCancel(context.Background())
				if (w+i)%4 == 0 {
					go cancel()
				}
				err := b.Maybe(ctx, func() {
					n := running.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					ran.Add(1)
					runtime.Gosched()
					running.Add(-1)
				})
				cancel()
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Maybe: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > capacity || p < 1 {
		t.Errorf("peak concurrency %d, want in [1, %d]", p, capacity)
	}
	if ran.Load() == 0 {
		t.Error("no thunk ran")
	}
	if got := b.snapshot(); got != (breakerState{capacity: capacity}) {
		t.Fatalf("final state %+v, want empty", got)
	}
}

func TestBreakerPanicReleases(t *testing.T) {
	b := NewBreaker(BreakerParams{QueueDepth: 1, MaxConcurrency: 1, InitialCapacity: 1})
	queued := breakerQueuedSignal(b)

	running := make(chan struct{})
	panicking := make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_ = b.Maybe(context.Background(), func() {
			close(running)
			<-panicking
			panic("boom")
		})
	}()
	// Wait until the panicking request is running, then queue another.
	<-running
	w := breakerHold(context.Background(), b)
	<-queued
	if got := b.snapshot(); got != (breakerState{inFlight: 2, running: 1, waiting: 1, capacity: 1}) {
		t.Fatalf("before panic: %+v", got)
	}
	close(panicking)
	if p := <-panicked; p != "boom" {
		t.Fatalf("recovered %v, want boom", p)
	}
	// The slot went to the waiter.
	<-w.started
	w.release(t)
	if got := b.snapshot(); got != (breakerState{capacity: 1}) {
		t.Fatalf("final state %+v, want empty", got)
	}
	// And the fast path works again.
	ran := false
	if err := b.Maybe(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("Maybe after panic: err=%v ran=%v", err, ran)
	}
}

func TestBreakerInFlight(t *testing.T) {
	b := NewBreaker(BreakerParams{QueueDepth: 5, MaxConcurrency: 2, InitialCapacity: 2})
	queued := breakerQueuedSignal(b)
	var hs []*breakerHolder
	steps := []struct {
		queue    bool
		inFlight int
	}{
		{false, 1}, {false, 2}, {true, 3}, {true, 4}, {true, 5},
	}
	for i, s := range steps {
		if s.queue {
			hs = append(hs, breakerHold(context.Background(), b))
			<-queued
		} else {
			hs = append(hs, breakerHoldRunning(t, b))
		}
		if got := b.InFlight(); got != s.inFlight {
			t.Fatalf("step %d: InFlight() = %d, want %d", i, got, s.inFlight)
		}
	}
	for i, h := range hs {
		<-h.started
		h.release(t)
		if got, want := b.InFlight(), len(hs)-i-1; got != want {
			t.Fatalf("after %d releases: InFlight() = %d, want %d", i+1, got, want)
		}
	}
	// Uncontended fast path: InFlight is 1 inside the thunk.
	inside := -1
	if err := b.Maybe(context.Background(), func() { inside = b.InFlight() }); err != nil {
		t.Fatal(err)
	}
	if inside != 1 {
		t.Errorf("InFlight() inside thunk = %d, want 1", inside)
	}
}

func TestBreakerUpdateConcurrency(t *testing.T) {
	b := NewBreaker(BreakerParams{QueueDepth: 10, MaxConcurrency: 3, InitialCapacity: 0})
	queued := breakerQueuedSignal(b)

	// Capacity 0: everything queues.
	ws := make([]*breakerHolder, 5)
	for i := range ws {
		ws[i] = breakerHold(context.Background(), b)
		<-queued
	}
	if got := b.snapshot(); got != (breakerState{inFlight: 5, waiting: 5}) {
		t.Fatalf("capacity 0: %+v", got)
	}

	// Grow to 2: the first two start, in order.
	b.UpdateConcurrency(2)
	<-ws[0].started
	<-ws[1].started
	if got := b.snapshot(); got != (breakerState{inFlight: 5, running: 2, waiting: 3, capacity: 2}) {
		t.Fatalf("capacity 2: %+v", got)
	}

	// Clamped to MaxConcurrency (3): only one more starts.
	b.UpdateConcurrency(100)
	<-ws[2].started
	if got := b.snapshot(); got != (breakerState{inFlight: 5, running: 3, waiting: 2, capacity: 3}) {
		t.Fatalf("capacity 100→3: %+v", got)
	}
	if got := b.Capacity(); got != 3 {
		t.Fatalf("Capacity() = %d, want 3", got)
	}

	// Shrink to 1 with 3 running: nothing new starts until running < 1.
	b.UpdateConcurrency(1)
	ws[0].release(t)
	if got := b.snapshot(); got != (breakerState{inFlight: 4, running: 2, waiting: 2, capacity: 1}) {
		t.Fatalf("shrunk, one released: %+v", got)
	}
	ws[1].release(t)
	if got := b.snapshot(); got != (breakerState{inFlight: 3, running: 1, waiting: 2, capacity: 1}) {
		t.Fatalf("shrunk, two released: %+v", got)
	}
	ws[2].release(t) // now running drops to 0 → hand to ws[3]
	<-ws[3].started
	if got := b.snapshot(); got != (breakerState{inFlight: 2, running: 1, waiting: 1, capacity: 1}) {
		t.Fatalf("shrunk, handoff: %+v", got)
	}

	// Negative clamps to 0.
	b.UpdateConcurrency(-5)
	if got := b.Capacity(); got != 0 {
		t.Fatalf("Capacity() after -5 = %d, want 0", got)
	}
	ws[3].release(t)
	if got := b.snapshot(); got != (breakerState{inFlight: 1, running: 0, waiting: 1, capacity: 0}) {
		t.Fatalf("capacity 0 again: %+v", got)
	}
	select {
	case <-ws[4].started:
		t.Fatal("waiter started with capacity 0")
	default:
	}
	b.UpdateConcurrency(1)
	<-ws[4].started
	ws[4].release(t)
	if got := b.snapshot(); got != (breakerState{capacity: 1}) {
		t.Fatalf("final state %+v, want empty", got)
	}
}

func TestBreakerCancelledContextFastPath(t *testing.T) {
	// A free slot is taken without looking at the context (as in Knative);
	// a cancelled context only matters while queued.
	b := NewBreaker(BreakerParams{QueueDepth: 1, MaxConcurrency: 1, InitialCapacity: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := b.Maybe(ctx, func() { ran = true }); err != nil || !ran {
		t.Fatalf("free slot: err=%v ran=%v, want nil true", err, ran)
	}
	h := breakerHoldRunning(t, b)
	ran = false
	if err := b.Maybe(ctx, func() { ran = true }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("queued: err=%v ran=%v, want Canceled false", err, ran)
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer dcancel()
	if err := b.Maybe(dctx, func() { ran = true }); !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("queued with past deadline: err=%v ran=%v, want DeadlineExceeded false", err, ran)
	}
	h.release(t)
	if got := b.snapshot(); got != (breakerState{capacity: 1}) {
		t.Fatalf("final state %+v, want empty", got)
	}
}

func BenchmarkBreakerUncontended(b *testing.B) {
	br := NewBreaker(BreakerParams{QueueDepth: 10, MaxConcurrency: 1, InitialCapacity: 1})
	ctx := context.Background()
	thunk := func() {}
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Maybe(ctx, thunk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBreakerContended(b *testing.B) {
	for _, capacity := range []int{1, 4, 64} {
		b.Run("cc"+strconv.Itoa(capacity), func(b *testing.B) {
			depth := 1 << 20
			br := NewBreaker(BreakerParams{QueueDepth: depth, MaxConcurrency: capacity, InitialCapacity: capacity})
			ctx := context.Background()
			thunk := func() {}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := br.Maybe(ctx, thunk); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
