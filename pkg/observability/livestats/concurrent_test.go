package livestats

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentRecordRotateSnapshot records from several goroutines while
// another rotates (50 ms of fake time per call, staying within 8 minutes)
// and takes snapshots, at least 300 times while the writers run. Run under -race. During the run the 10m window never
// shrinks and never holds more than was recorded; at the end it holds
// exactly what was recorded, counter by counter.
func TestConcurrentRecordRotateSnapshot(t *testing.T) {
	const (
		writers   = 4
		perWriter = 20000
	)
	outcomes := []Outcome{OK, OK, OK, QueueFull, Timeout, UpstreamError, OtherError}
	r := New(t0)

	var started atomic.Uint64 // Records begun
	var steps atomic.Int64    // rotations done
	var recorded [writers]int // per writer, when it is done
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			i := 0
			defer func() { recorded[w] = i }()
			// At least perWriter samples, and on until 300 rotations
			// have run alongside.
			for ; i < perWriter || steps.Load() < 300; i++ {
				o := outcomes[(i+w)%len(outcomes)]
				d := time.Duration(i*7919%100000) * time.Microsecond
				started.Add(1)
				r.Record(Sample{Total: d, QueueWait: d / 8, Upstream: d - d/8, Admitted: o != QueueFull && i%11 != 0, Outcome: o})
			}
		})
	}

	done := make(chan struct{})
	var rotator sync.WaitGroup
	var now time.Time // owned by the rotator until it ends
	rotator.Go(func() {
		var last uint64
		for step := 0; ; step++ {
			select {
			case <-done:
				return
			default:
			}
			now = t0.Add(time.Duration(min(step, 8*60*20)) * 50 * time.Millisecond)
			r.Rotate(now)
			s := r.Snapshot(now)
			ten := s.Windows[2]
			if ten.Requests < last {
				t.Errorf("at %v the 10m window went from %d to %d requests", now.Sub(t0), last, ten.Requests)
			}
			if max := started.Load(); ten.Requests > max {
				t.Errorf("at %v the 10m window has %d requests, only %d recorded", now.Sub(t0), ten.Requests, max)
			}
			last = ten.Requests
			steps.Add(1)
		}
	})
	wg.Wait()
	close(done)
	rotator.Wait()

	// Expected counters, computed as the writers chose them.
	var want Window
	var wantWait uint64
	for w := range writers {
		for i := range recorded[w] {
			o := outcomes[(i+w)%len(outcomes)]
			want.Requests++
			*[]*uint64{&want.OK, &want.QueueFull, &want.Timeouts, &want.UpstreamErrors, &want.OtherErrors}[o]++
			if o != QueueFull && i%11 != 0 {
				want.Admitted++
			}
			if o != QueueFull {
				wantWait++
			}
		}
	}
	for _, final := range []time.Time{now, now.Add(time.Second)} { // before and after one more rotation
		r.Rotate(final)
		ten := r.Snapshot(final).Windows[2]
		got := Window{Requests: ten.Requests, Admitted: ten.Admitted, OK: ten.OK, QueueFull: ten.QueueFull,
			Timeouts: ten.Timeouts, UpstreamErrors: ten.UpstreamErrors, OtherErrors: ten.OtherErrors}
		if got != want {
			t.Errorf("10m window counters at %v = %+v, want %+v", final.Sub(t0), got, want)
		}
		if c := [3]uint64{ten.Total.Count, ten.QueueWait.Count, ten.UserContainer.Count}; c != [3]uint64{want.Requests, wantWait, want.Admitted} {
			t.Errorf("10m window latency counts at %v = %v, want %v", final.Sub(t0), c, [3]uint64{want.Requests, wantWait, want.Admitted})
		}
	}
}
