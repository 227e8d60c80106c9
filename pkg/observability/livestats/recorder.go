package livestats

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is how a request ended, from the proxy's point of view.
type Outcome uint8

const (
	// OK: the response had a status below 500, whoever wrote it.
	OK Outcome = iota
	// QueueFull: the breaker rejected the request because its queue was
	// full (503 overload); the request never waited and never went upstream.
	QueueFull
	// Timeout: the timeout handler answered 504 (while the request was
	// queued or upstream).
	Timeout
	// UpstreamError: the proxy's error handler answered 502 (the user
	// container could not be reached or broke the exchange).
	UpstreamError
	// OtherError: any other response with a status of 500 or above, e.g.
	// the user container's own 500. Record counts an Outcome outside this
	// list as OtherError.
	OtherError

	numOutcomes = 5
)

// Sample is one request, as the proxy measured it.
type Sample struct {
	// Total is the whole time the proxy spent on the request.
	Total time.Duration
	// QueueWait is the time spent waiting in the concurrency breaker
	// (0 without a breaker). Recorded for every Outcome but QueueFull.
	QueueWait time.Duration
	// Upstream is the user-container time: from sending the request
	// upstream to the end of the response. Recorded only when Admitted.
	Upstream time.Duration
	// Admitted says that the request passed the breaker (true when there
	// is no breaker).
	Admitted bool
	Outcome  Outcome
}

// Layout of the counter cells, the same in a shard (cumulative, atomic) and
// in a ring slot (one slot's share, plain): the request counters by
// admitted and outcome (index admitted*numOutcomes + outcome), then the
// histograms of total time, queue wait and user-container time.
const (
	countCells   = 2 * numOutcomes
	totalBase    = countCells
	waitBase     = totalBase + numBuckets
	upstreamBase = waitBase + numBuckets
	numCells     = upstreamBase + numBuckets
)

// maxShards bounds the number of shards (and their memory, 12.4 KB each).
const maxShards = 8

// shard is one set of cumulative counters. Records running on one P (one
// CPU) use the same shard, so its cache lines stay with that CPU.
type shard struct {
	cells [numCells]atomic.Uint64
	_     [64]byte // keeps the next shard's first cells off this shard's last line
}

// Recorder keeps live, windowed request figures — counts by outcome, rates
// and latency percentiles over the last 10 s, 1 min and 10 min — for an
// operator's /debug/stats view.
//
// Recording. Record adds to cumulative counters only: one atomic add for
// the outcome counter and one per recorded histogram (three at most),
// nothing else; it does not read the clock, lock, or allocate. The counters
// are sharded per P: a sync.Pool serves as a per-P hint of which shard to
// use (its fast path pins the goroutine to its P without locking), so that
// parallel Records on different CPUs do not fight over cache lines. The
// pool is only a hint, correctness rests on the atomics: any goroutine may
// add to any shard. One caveat: after each garbage collection sync.Pool
// rebuilds its per-P array, so the first Record on each P after a GC goes
// through the pool's slow path (the runtime's pool mutex and one small
// allocation); every other Record is lock- and allocation-free.
//
// Time. Time advances only through Rotate(now), which the caller calls
// about once per second, and Snapshot(now). Times are measured from the
// start given to New with time.Time.Sub, so times from time.Now use the
// monotonic clock and wall-clock steps do not affect the Recorder. Whole
// seconds since start are "ticks". The samples recorded since the last
// Rotate that changed the tick form the live slot, stamped with that
// Rotate's tick (its "opening"). Rotate in a later tick closes the live
// slot: the increase of the cumulative counters since the previous close
// is added to three rings, a slot of 1 s (10 slots), of 10 s (6 slots) and
// of 1 min (10 slots), and a new live slot opens. A window of N slots of
// length g is the ring slots with stamps in the N g-long periods ending
// with the current one, plus the live slot when its stamp is among them.
// So one Record touches at most 4 counter cache lines (and the pool's
// P-local slot), and Rotate does the folding.
//
// Windows. A window holds exactly the samples recorded since the Rotate
// that opened its oldest slot (Window.CoveredSeconds is the time since
// then), so it never holds a sample older than its length L. With Rotate
// called every second, CoveredSeconds stays above L minus one slot minus
// 1 s of ticker phase (8 s of 10 s, 49 s of 1 min, 539 s of 10 min): a
// sample leaves a window between L - slot - 1 s and L after it was
// recorded, i.e. to within one slot (plus the phase). If Rotate is late,
// the samples of the gap all belong to the slot opened before it; the
// windows forget them together, CoveredSeconds shrinking accordingly, and
// the skipped slots stay empty (slots are identified by stamp, a stale one
// is never read). Younger than a window, the process has CoveredSeconds =
// uptime, so the rate is over the uptime. A time earlier than the
// live slot's opening (only possible with times lacking a monotonic
// reading) is taken as that opening: nothing rotates.
//
// Concurrency. Record may be called from any number of goroutines at any
// time; Rotate and Snapshot exclude each other with a mutex, never taken
// by Record. A Record that happens before Rotate(t) is in the slot that
// Rotate closes or an earlier one; a Record that happens before Snapshot
// is counted by that Snapshot (in the windows its slot is in). A Record running concurrently with a Rotate lands,
// counter by counter, in the closing slot or in the next one and in
// exactly one: the cumulative counters are read once per close and only
// their increase is folded, so over time no sample is lost or counted
// twice. (Within one window such a sample may have its request count in
// one slot and its latencies in the next: each latency has its own count.)
//
// Memory, all allocated by New: the ring slots, 26 × 6,200 B (10 + 6 + 10
// slots of 1,546 four-byte counters: 10 request counters and three
// histograms of 512 buckets); per shard (min(GOMAXPROCS, 8) of them)
// 12,432 B; the rotation state with three scratch arrays, 37,104 B. With
// the heap's rounding to whole pages that is 218,384 B (213 KiB) with one
// shard and 311,312 B (304 KiB) with eight (TestMemory measures it). The
// bucket count dominates; histogram.go says why it is 512.
type Recorder struct {
	shards []shard
	hint   sync.Pool // *shard: which shard the current P uses
	next   atomic.Uint32

	mu    sync.Mutex // Rotate and Snapshot
	start time.Time
	rot   rotation
}

// New returns a Recorder whose time starts at start (usually time.Now()).
// All its memory is allocated here.
func New(start time.Time) *Recorder {
	return newRecorder(start, min(max(runtime.GOMAXPROCS(0), 1), maxShards))
}

func newRecorder(start time.Time, shards int) *Recorder {
	r := &Recorder{shards: make([]shard, shards), start: start}
	r.hint.New = r.assignShard
	r.rot.init()
	return r
}

// assignShard hands out the shards in turn to the Ps that ask for one.
func (r *Recorder) assignShard() any {
	return &r.shards[int(r.next.Add(1)-1)%len(r.shards)]
}

// Record counts one request. It is safe for concurrent use, O(1), does not
// allocate, and does not read the clock.
func (r *Recorder) Record(s Sample) {
	sh := r.hint.Get().(*shard)
	o := s.Outcome
	if o >= numOutcomes {
		o = OtherError
	}
	c := int(o)
	if s.Admitted {
		c += numOutcomes
	}
	sh.cells[c].Add(1)
	sh.cells[totalBase+bucketOf(s.Total)].Add(1)
	if o != QueueFull {
		sh.cells[waitBase+bucketOf(s.QueueWait)].Add(1)
	}
	if s.Admitted {
		sh.cells[upstreamBase+bucketOf(s.Upstream)].Add(1)
	}
	r.hint.Put(sh)
}

// sinceStart is now's time since start as Rotate and Snapshot measure it:
// never negative.
func (r *Recorder) sinceStart(now time.Time) time.Duration {
	return max(now.Sub(r.start), 0)
}
