package livestats

import (
	"math"
	"runtime"
	"testing"
	"time"
)

func TestRecordCounters(t *testing.T) {
	ms := time.Millisecond
	samples := []Sample{
		{Total: 10 * ms, QueueWait: 2 * ms, Upstream: 8 * ms, Admitted: true, Outcome: OK},
		{Total: 20 * ms, QueueWait: 0, Upstream: 20 * ms, Admitted: true, Outcome: OK},
		{Total: 1 * ms, Outcome: QueueFull},                    // rejected: no wait, no upstream
		{Total: 30 * ms, QueueWait: 30 * ms, Outcome: Timeout}, // timed out in the queue
		{Total: 40 * ms, QueueWait: 1 * ms, Upstream: 39 * ms, Admitted: true, Outcome: Timeout},
		{Total: 5 * ms, Upstream: 5 * ms, Admitted: true, Outcome: UpstreamError},
		{Total: 6 * ms, Upstream: 6 * ms, Admitted: true, Outcome: OtherError},
		{Total: 7 * ms, Upstream: 7 * ms, Admitted: true, Outcome: Outcome(42)}, // unknown: OtherError
	}
	want := Window{
		Requests: 8, Admitted: 6, OK: 2, QueueFull: 1, Timeouts: 2, UpstreamErrors: 1, OtherErrors: 2,
	}
	wantCounts := [3]uint64{8, 7, 6} // total, queue wait, user container

	r := newRecorder(t0, 3)
	for _, s := range samples {
		r.Record(s)
	}
	snap := r.Snapshot(at(2))
	for _, w := range snap.Windows {
		got := w
		got.Name, got.LengthSeconds, got.CoveredSeconds, got.RatePerSecond = "", 0, 0, 0
		got.Total, got.QueueWait, got.UserContainer = Latency{}, Latency{}, Latency{}
		if got != want {
			t.Errorf("window %s counters = %+v, want %+v", w.Name, got, want)
		}
		if c := [3]uint64{w.Total.Count, w.QueueWait.Count, w.UserContainer.Count}; c != wantCounts {
			t.Errorf("window %s latency counts = %v, want %v", w.Name, c, wantCounts)
		}
		if w.RatePerSecond != 4 {
			t.Errorf("window %s rate = %g, want 4 (8 requests in 2 s of uptime)", w.Name, w.RatePerSecond)
		}
		// Total: 1 5 6 7 10 20 30 40 ms; nearest rank p50 = 4th = 7 ms, p90 = p99 = 8th = 40 ms.
		checkMs(t, w.Name+" total p50", w.Total.P50Ms, 7)
		checkMs(t, w.Name+" total p90", w.Total.P90Ms, 40)
		checkMs(t, w.Name+" total p99.9", w.Total.P999Ms, 40)
		// Queue wait: 0 0 0 0 0 1 2 30 ms (the QueueFull sample is left out).
		checkMs(t, w.Name+" queue wait p50", w.QueueWait.P50Ms, 0)
		checkMs(t, w.Name+" queue wait p90", w.QueueWait.P90Ms, 30)
		// User container: 5 6 7 8 20 39 ms.
		checkMs(t, w.Name+" user container p50", w.UserContainer.P50Ms, 7)
		checkMs(t, w.Name+" user container p99", w.UserContainer.P99Ms, 39)
	}
}

// checkMs checks a reported percentile in milliseconds against the exact
// value, within the stated bound.
func checkMs(t *testing.T, what string, gotMs, exactMs float64) {
	t.Helper()
	got := time.Duration(gotMs * float64(time.Millisecond))
	exact := time.Duration(exactMs * float64(time.Millisecond))
	if !withinBound(got, exact) {
		t.Errorf("%s = %g ms, want %g ms within 1/32", what, gotMs, exactMs)
	}
}

func TestRecordAllocs(t *testing.T) {
	r := New(t0)
	s := Sample{Total: 3 * time.Millisecond, QueueWait: time.Millisecond, Upstream: 2 * time.Millisecond, Admitted: true}
	if n := testing.AllocsPerRun(10000, func() { r.Record(s) }); n != 0 {
		t.Errorf("Record allocates %g times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { r.Rotate(at(float64(len(r.shards)))) }); n != 0 {
		t.Errorf("Rotate allocates %g times per call, want 0", n)
	}
}

// TestShardsSum records into every shard directly (as Records on different
// Ps would) and checks that Snapshot sees the sum.
func TestShardsSum(t *testing.T) {
	r := newRecorder(t0, 4)
	for i := range r.shards {
		for range i + 1 {
			r.shards[i].cells[OK].Add(1)
			r.shards[i].cells[totalBase+bucketOf(time.Millisecond)].Add(1)
		}
	}
	r.Rotate(at(1))
	if w := r.Snapshot(at(1)).Windows[0]; w.Requests != 10 || w.Total.Count != 10 {
		t.Errorf("requests = %d, latencies = %d, want 10 and 10", w.Requests, w.Total.Count)
	}
	// assignShard hands out every shard before reusing one.
	seen := map[*shard]bool{}
	for range r.shards {
		seen[r.assignShard().(*shard)] = true
	}
	if len(seen) != len(r.shards) {
		t.Errorf("assignShard handed out %d distinct shards of %d", len(seen), len(r.shards))
	}
}

// TestMemory checks the memory stated on Recorder: 218,384 B with one
// shard, 311,312 B with eight. It keeps the least of a few measurements, as
// another goroutine (the runtime's, the race detector's) may allocate
// during one.
func TestMemory(t *testing.T) {
	for _, c := range []struct {
		shards   int
		min, max uint64
	}{{1, 211_000, 222_000}, {maxShards, 298_000, 316_000}} {
		got := uint64(math.MaxUint64)
		for range 5 {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := newRecorder(t0, c.shards)
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(r)
			got = min(got, after.TotalAlloc-before.TotalAlloc)
		}
		t.Logf("%d shards: %d bytes", c.shards, got)
		if got < c.min || got > c.max {
			t.Errorf("New with %d shards allocated %d bytes, want %d to %d", c.shards, got, c.min, c.max)
		}
	}
}
