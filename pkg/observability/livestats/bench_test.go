package livestats

import (
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// benchSamples are varied full samples (three durations spread over many
// buckets, every outcome), so that the benchmarks touch realistic cache
// lines rather than one bucket.
var benchSamples = func() [1024]Sample {
	var s [1024]Sample
	x := uint64(0x9E3779B97F4A7C15)
	for i := range s {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		total := time.Duration(x%uint64(200*time.Millisecond)) + 50*time.Microsecond
		wait := total / time.Duration(2+x%9)
		o := Outcome(x>>40) % 16
		if o >= numOutcomes {
			o = OK
		}
		s[i] = Sample{Total: total, QueueWait: wait, Upstream: total - wait, Admitted: o != QueueFull, Outcome: o}
	}
	return s
}()

// BenchmarkRecord is one Record of a full sample.
func BenchmarkRecord(b *testing.B) {
	r := New(t0)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		r.Record(benchSamples[i&1023])
		i++
	}
}

// BenchmarkRecordParallel is Record from GOMAXPROCS goroutines at once, each
// walking the samples from a different place; ns/op is wall time per
// Record over all goroutines.
func BenchmarkRecordParallel(b *testing.B) {
	r := New(t0)
	var offset atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(offset.Add(337))
		for pb.Next() {
			r.Record(benchSamples[i&1023])
			i++
		}
	})
}

// BenchmarkRotate is one Rotate that closes a slot (it runs once a second).
func BenchmarkRotate(b *testing.B) {
	r := New(t0)
	for i := range benchSamples {
		r.Record(benchSamples[i])
	}
	sec := 0
	b.ReportAllocs()
	for b.Loop() {
		sec++
		r.Rotate(t0.Add(time.Duration(sec) * time.Second))
	}
}

// BenchmarkSnapshot is one Snapshot of full windows, and its text.
func BenchmarkSnapshot(b *testing.B) {
	r := New(t0)
	for sec := 1; sec <= 700; sec++ {
		for i := range 64 {
			r.Record(benchSamples[(sec*64+i)&1023])
		}
		r.Rotate(t0.Add(time.Duration(sec) * time.Second))
	}
	now := t0.Add(700*time.Second + 500*time.Millisecond)
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.Snapshot(now)
		}
	})
	b.Run("text", func(b *testing.B) {
		s := r.Snapshot(now)
		b.ReportAllocs()
		for b.Loop() {
			_ = s.WriteText(io.Discard)
		}
	})
}
