package goruntime

import (
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func metricByName(s metricdata.Scope, name string) (metricdata.Metric, bool) {
	i := slices.IndexFunc(s.Metrics, func(m metricdata.Metric) bool { return m.Name == name })
	if i < 0 {
		return metricdata.Metric{}, false
	}
	return s.Metrics[i], true
}

// noMemoryLimit clears any memory limit for the test and restores it after.
func noMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
}

// TestRuntimeScope: the scope's identity and every metric's name, unit,
// description, kind, attributes and times, as the contrib instrumentation
// v0.72.0 defines them.
func TestRuntimeScope(t *testing.T) {
	noMemoryLimit(t)
	clock := newFakeClock()
	created := clock.Now().UnixNano()
	r := NewRuntime(time.Second, clock.Now)
	clock.Advance(5 * time.Second)
	s := r.Scope()

	if s.Name != "go.opentelemetry.io/contrib/instrumentation/runtime" || s.Version != "0.72.0" || s.SchemaURL != "" {
		t.Errorf("scope %q %q %q", s.Name, s.Version, s.SchemaURL)
	}
	want := []struct {
		name, unit, desc string
		monotonic        bool
		attrs            []string // go.memory.type of each point; nil: one point, no attributes
	}{
		{"go.memory.used", "By", "Memory used by the Go runtime.", false, []string{"stack", "other"}},
		{"go.memory.allocated", "By", "Memory allocated to the heap by the application.", true, nil},
		{"go.memory.allocations", "{allocation}", "Count of allocations to the heap by the application.", true, nil},
		{"go.memory.gc.goal", "By", "Heap size target for the end of the GC cycle.", false, nil},
		{"go.goroutine.count", "{goroutine}", "Count of live goroutines.", false, nil},
		{"go.processor.limit", "{thread}", "The number of OS threads that can execute user-level Go code simultaneously.", false, nil},
		{"go.config.gogc", "%", "Heap size target percentage configured by the user, otherwise 100.", false, nil},
	}
	if len(s.Metrics) != len(want) {
		t.Fatalf("%d metrics, want %d: %+v", len(s.Metrics), len(want), s.Metrics)
	}
	for i, w := range want {
		m := s.Metrics[i]
		if m.Name != w.name || m.Unit != w.unit || m.Description != w.desc {
			t.Errorf("metric %d: %q %q %q, want %q %q %q", i, m.Name, m.Unit, m.Description, w.name, w.unit, w.desc)
		}
		if m.Kind != metricdata.Sum || m.Monotonic != w.monotonic || !m.IsInt {
			t.Errorf("%s: kind %v monotonic %v int %v, want Sum %v int", m.Name, m.Kind, m.Monotonic, m.IsInt, w.monotonic)
		}
		wantPoints := max(1, len(w.attrs))
		if len(m.Points) != wantPoints {
			t.Errorf("%s: %d points, want %d", m.Name, len(m.Points), wantPoints)
			continue
		}
		for j, p := range m.Points {
			if p.Start != created || p.Time != clock.Now().UnixNano() {
				t.Errorf("%s: start %d time %d, want %d %d", m.Name, p.Start, p.Time, created, clock.Now().UnixNano())
			}
			var want []metricdata.Attr
			if w.attrs != nil {
				want = []metricdata.Attr{metricdata.String("go.memory.type", w.attrs[j])}
			}
			if !slices.Equal(p.Attrs, want) {
				t.Errorf("%s point %d: attrs %v, want %v", m.Name, j, p.Attrs, want)
			}
			if p.Value <= 0 || p.Value != math.Trunc(p.Value) {
				t.Errorf("%s point %d: value %v, want a positive integer", m.Name, j, p.Value)
			}
		}
	}
}

// TestRuntimeValues: values the test controls or can compute.
func TestRuntimeValues(t *testing.T) {
	noMemoryLimit(t)
	oldGOGC := debug.SetGCPercent(137)
	t.Cleanup(func() { debug.SetGCPercent(oldGOGC) })
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	s := NewRuntime(time.Second, nil).Scope()
	value := func(name string, point int) float64 {
		m, ok := metricByName(s, name)
		if !ok || len(m.Points) <= point {
			t.Fatalf("%s point %d missing", name, point)
		}
		return m.Points[point].Value
	}
	if got := value("go.config.gogc", 0); got != 137 {
		t.Errorf("go.config.gogc = %v, want 137", got)
	}
	if got, want := value("go.processor.limit", 0), float64(runtime.GOMAXPROCS(0)); got != want {
		t.Errorf("go.processor.limit = %v, want %v", got, want)
	}
	if got := value("go.goroutine.count", 0); got < 2 {
		t.Errorf("go.goroutine.count = %v, want at least this test's and the main one", got)
	}
	if got, want := value("go.memory.used", 0), float64(ms.StackInuse); math.Abs(got-want) > 1<<20 {
		t.Errorf("go.memory.used{stack} = %v, MemStats.StackInuse %v", got, want)
	}
	other, want := value("go.memory.used", 1), float64(ms.Sys-ms.HeapReleased-ms.StackInuse)
	if math.Abs(other-want) > 8<<20 {
		t.Errorf("go.memory.used{other} = %v, MemStats Sys-HeapReleased-StackInuse %v", other, want)
	}
	if got := value("go.memory.allocated", 0); got < float64(ms.TotalAlloc) {
		t.Errorf("go.memory.allocated = %v, behind MemStats.TotalAlloc %v read before", got, ms.TotalAlloc)
	}
	if got := value("go.memory.gc.goal", 0); got < 1<<20 {
		t.Errorf("go.memory.gc.goal = %v, want at least 1 MiB", got)
	}
}

var sink []*[64]byte

// TestRuntimeReadInterval: within the minimum read interval a collection
// reports the previous values at the new time; at the interval it reads
// again. A non-positive interval is the 15 s default.
func TestRuntimeReadInterval(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		want     time.Duration
	}{
		{"set", 3 * time.Second, 3 * time.Second},
		{"zero is the default", 0, 15 * time.Second},
		{"negative is the default", -time.Second, 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			r := NewRuntime(tc.interval, clock.Now)
			allocations := func() (float64, int64) {
				m, _ := metricByName(r.Scope(), "go.memory.allocations")
				return m.Points[0].Value, m.Points[0].Time
			}
			first, _ := allocations()
			allocate(10000)
			clock.Advance(tc.want - time.Nanosecond)
			cached, at := allocations()
			if cached != first {
				t.Errorf("read again %v after the last read: %v -> %v", tc.want-time.Nanosecond, first, cached)
			}
			if at != clock.Now().UnixNano() {
				t.Errorf("cached values reported at %d, want the collection time %d", at, clock.Now().UnixNano())
			}
			clock.Advance(time.Nanosecond)
			// The runtime publishes each P's counts when it refills a span,
			// so a few hundred of the latest allocations may not show yet.
			if again, _ := allocations(); again < first+5000 {
				t.Errorf("after the interval and 10000 allocations: %v, want at least %v", again, first+5000)
			}
		})
	}
}

func allocate(n int) {
	sink = make([]*[64]byte, n)
	for i := range sink {
		sink[i] = new([64]byte)
	}
}

// TestRuntimeValuesMove: the counters follow allocations.
func TestRuntimeValuesMove(t *testing.T) {
	clock := newFakeClock()
	r := NewRuntime(time.Second, clock.Now)
	read := func() (bytes, objects float64) {
		s := r.Scope()
		b, _ := metricByName(s, "go.memory.allocated")
		o, _ := metricByName(s, "go.memory.allocations")
		return b.Points[0].Value, o.Points[0].Value
	}
	b0, o0 := read()
	allocate(10000)
	clock.Advance(time.Second)
	b1, o1 := read()
	// Each P's counts are published when it refills a span: allow a lag.
	if o1-o0 < 5000 || b1-b0 < 5000*64 {
		t.Errorf("after 10000 allocations of 64 bytes: allocations +%v, allocated +%v bytes", o1-o0, b1-b0)
	}
}

// TestRuntimeMemoryLimit: go.memory.limit only while a limit is set.
func TestRuntimeMemoryLimit(t *testing.T) {
	noMemoryLimit(t)
	clock := newFakeClock()
	r := NewRuntime(time.Second, clock.Now)
	if _, ok := metricByName(r.Scope(), "go.memory.limit"); ok {
		t.Error("go.memory.limit present without a limit")
	}
	debug.SetMemoryLimit(3 << 30)
	clock.Advance(time.Second)
	m, ok := metricByName(r.Scope(), "go.memory.limit")
	if !ok {
		t.Fatal("go.memory.limit missing with a limit set")
	}
	if m.Unit != "By" || m.Kind != metricdata.Sum || m.Monotonic || !m.IsInt ||
		m.Description != "Go runtime memory limit configured by the user, if a limit exists." {
		t.Errorf("go.memory.limit: %+v", m)
	}
	if len(m.Points) != 1 || m.Points[0].Value != 3<<30 || m.Points[0].Attrs != nil {
		t.Errorf("go.memory.limit points %+v, want one of %d", m.Points, 3<<30)
	}
	// It follows go.memory.used, as the contrib instrumentation registers it.
	if s := r.Scope(); s.Metrics[1].Name != "go.memory.limit" {
		t.Errorf("metric 1 is %s, want go.memory.limit", s.Metrics[1].Name)
	}
}

// TestRuntimeConcurrent: concurrent collections (run with -race).
func TestRuntimeConcurrent(t *testing.T) {
	clock := newFakeClock()
	r := NewRuntime(time.Millisecond, clock.Now)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				clock.Advance(time.Millisecond)
				if s := r.Scope(); len(s.Metrics) < 7 {
					t.Errorf("%d metrics", len(s.Metrics))
				}
			}
		})
	}
	wg.Wait()
}
