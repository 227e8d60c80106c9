package goruntime

import (
	"testing"
	"time"
)

// BenchmarkRuntimeScope: one collection that reads the runtime (the
// interval has passed), and one that reports the cached values.
func BenchmarkRuntimeScope(b *testing.B) {
	for _, bc := range []struct {
		name    string
		advance time.Duration
	}{{"read", time.Second}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			clock := newFakeClock()
			r := NewRuntime(time.Second, clock.Now)
			b.ReportAllocs()
			for b.Loop() {
				clock.Advance(bc.advance)
				if s := r.Scope(); len(s.Metrics) == 0 {
					b.Fatal("no metrics")
				}
			}
		})
	}
}

// BenchmarkPromDefaultsAppend: one exposition of the default families,
// /proc reads included, into a reused buffer.
func BenchmarkPromDefaultsAppend(b *testing.B) {
	p := NewPromDefaults()
	buf := p.Append(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = p.Append(buf[:0])
	}
}
