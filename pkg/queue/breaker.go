package queue

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
)

// ErrRequestQueueFull is returned by Maybe when every admission slot
// (queued plus running) is taken. ProxyHandler turns it into a 503 whose
// body is this text.
var ErrRequestQueueFull = errors.New("pending request queue full")

// MaxBreakerCapacity is the largest capacity a Breaker can be given.
const MaxBreakerCapacity = math.MaxInt32

// BreakerParams configures a Breaker.
type BreakerParams struct {
	// QueueDepth is how many requests may wait for a running slot.
	QueueDepth int
	// MaxConcurrency is the upper bound of the running capacity.
	MaxConcurrency int
	// InitialCapacity is the running capacity the Breaker starts with.
	InitialCapacity int
}

// waiter is one queued request. ready receives exactly one token when a
// running slot is handed to the waiter.
type waiter struct {
	prev, next *waiter
	queued     bool
	ready      chan struct{}
}

var waiterPool = sync.Pool{New: func() any {
	return &waiter{ready: make(chan struct{}, 1)}
}}

// Breaker is the concurrency limiter in front of the user container
// (CONTRACT.md §3.4, error values §3.12). Use NewBreaker; the zero value is
// not usable.
//
// Contract:
//   - A Breaker admits at most QueueDepth+MaxConcurrency requests at once
//     (InFlight). A request that finds every admission slot taken is
//     rejected immediately with ErrRequestQueueFull; it never waits.
//   - Of the admitted requests at most Capacity() run their thunk at the
//     same time; the rest wait in a queue that is served strictly in
//     arrival order (FIFO). This is the deliberate difference from
//     Knative's breaker, whose wake-ups are unordered.
//   - A waiter whose context is done before it gets a running slot leaves
//     the queue, gives back its admission slot and Maybe (or Acquire)
//     returns ctx.Err(). If a running slot was handed to it at the same moment, the
//     slot is passed on to the next waiter (or back to the pool); capacity
//     is never lost.
//   - A request that finds a free running slot and an empty queue runs at
//     once, without looking at its context (as Knative's breaker does).
//   - The running slot is released when the thunk returns or panics; the
//     panic propagates to the caller.
//
// Implementation: one mutex guards every counter and an intrusive,
// doubly-linked FIFO of waiters. A released running slot is handed
// directly to the head waiter (its counter never drops), so a newcomer can
// never overtake the queue. Waiter structs, each with a one-element
// channel, are pooled. The uncontended path takes the mutex twice and
// allocates nothing.
type Breaker struct {
	mu sync.Mutex

	totalSlots int // QueueDepth + MaxConcurrency
	maxCap     int // MaxConcurrency

	inFlight int // admitted: waiting + running
	running  int // holding a running slot
	capacity int // running slots currently allowed
	waiting  int // length of the waiter list

	head, tail *waiter

	// onQueued, if set (tests only), is called after a waiter has been
	// appended to the queue, outside the lock.
	onQueued func()
}

// NewBreaker returns a Breaker for params. It panics if QueueDepth <= 0,
// MaxConcurrency < 0, or InitialCapacity is outside [0, MaxConcurrency].
func NewBreaker(params BreakerParams) *Breaker {
	if params.QueueDepth <= 0 {
		panic("queue: BreakerParams.QueueDepth must be greater than 0, got " + strconv.Itoa(params.QueueDepth))
	}
	if params.MaxConcurrency < 0 {
		panic("queue: BreakerParams.MaxConcurrency must not be negative, got " + strconv.Itoa(params.MaxConcurrency))
	}
	if params.InitialCapacity < 0 || params.InitialCapacity > params.MaxConcurrency {
		panic("queue: BreakerParams.InitialCapacity must be in [0, MaxConcurrency=" +
			strconv.Itoa(params.MaxConcurrency) + "], got " + strconv.Itoa(params.InitialCapacity))
	}
	return &Breaker{
		totalSlots: params.QueueDepth + params.MaxConcurrency,
		maxCap:     params.MaxConcurrency,
		capacity:   params.InitialCapacity,
	}
}

// Maybe runs thunk once a running slot is available. It returns
// ErrRequestQueueFull at once if the Breaker is full, and ctx.Err() if ctx
// is done while the request waits; in both cases thunk is not run.
func (b *Breaker) Maybe(ctx context.Context, thunk func()) error {
	if err := b.Acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	thunk()
	return nil
}

// Acquire is Maybe without the thunk, for callers that want to avoid
// building a closure per request: on a nil error the caller holds a
// running slot and must call Release exactly once (typically deferred, so
// that a panic releases it too). On error nothing is held.
func (b *Breaker) Acquire(ctx context.Context) error {
	b.mu.Lock()
	if b.inFlight >= b.totalSlots {
		b.mu.Unlock()
		return ErrRequestQueueFull
	}
	b.inFlight++
	// A non-empty queue implies running >= capacity (slots are handed
	// over, never left free while anyone waits); the head check is kept
	// so that FIFO does not depend on that invariant alone.
	if b.head == nil && b.running < b.capacity {
		b.running++
		b.mu.Unlock()
		return nil
	}
	return b.wait(ctx)
}

// Release gives back the running slot obtained by a successful Acquire.
func (b *Breaker) Release() { b.release() }

// wait is called with b.mu held and the request already counted in
// inFlight. It queues the request and returns (without the lock) once a
// running slot has been handed over, or with ctx.Err() after undoing the
// admission.
func (b *Breaker) wait(ctx context.Context) error {
	w := waiterPool.Get().(*waiter)
	b.push(w)
	hook := b.onQueued
	b.mu.Unlock()
	if hook != nil {
		hook()
	}

	select {
	case <-w.ready:
		waiterPool.Put(w)
		return nil
	case <-ctx.Done():
	}

	b.mu.Lock()
	if w.queued {
		// Not handed a slot yet: leave the queue and the admission.
		b.remove(w)
		b.inFlight--
		b.mu.Unlock()
		waiterPool.Put(w)
		return ctx.Err()
	}
	b.mu.Unlock()
	// A slot was handed over while we were being cancelled. The token was
	// sent under the lock, so it is in the buffer: drain it (so the pooled
	// channel is empty) and pass the slot on.
	<-w.ready
	waiterPool.Put(w)
	b.release()
	return ctx.Err()
}

// release gives back a running slot and the admission slot that goes with
// it. The running slot goes to the head waiter if capacity allows.
func (b *Breaker) release() {
	b.mu.Lock()
	b.inFlight--
	if w := b.head; w != nil && b.running <= b.capacity {
		// Hand over: running stays the same.
		b.remove(w)
		w.ready <- struct{}{}
	} else {
		b.running--
	}
	b.mu.Unlock()
}

// push appends w to the queue. b.mu must be held.
func (b *Breaker) push(w *waiter) {
	w.queued = true
	w.next = nil
	w.prev = b.tail
	if b.tail == nil {
		b.head = w
	} else {
		b.tail.next = w
	}
	b.tail = w
	b.waiting++
}

// remove unlinks w from the queue. b.mu must be held.
func (b *Breaker) remove(w *waiter) {
	if w.prev == nil {
		b.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		b.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	b.waiting--
}

// InFlight returns the number of admitted requests: queued plus running.
func (b *Breaker) InFlight() int {
	b.mu.Lock()
	n := b.inFlight
	b.mu.Unlock()
	return n
}

// Capacity returns the number of requests that may run at once.
func (b *Breaker) Capacity() int {
	b.mu.Lock()
	c := b.capacity
	b.mu.Unlock()
	return c
}

// UpdateConcurrency sets the running capacity to size, clamped to
// [0, MaxConcurrency]. When it grows, queued requests are admitted in
// arrival order; when it shrinks, running requests finish undisturbed and
// no new one starts until running drops below the new capacity.
func (b *Breaker) UpdateConcurrency(size int) {
	size = max(0, min(size, b.maxCap))
	b.mu.Lock()
	b.capacity = size
	for b.head != nil && b.running < b.capacity {
		w := b.head
		b.remove(w)
		b.running++
		w.ready <- struct{}{}
	}
	b.mu.Unlock()
}
