package goruntime

import (
	"math"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// Scope identity of the OpenTelemetry contrib runtime instrumentation that
// Knative v0.51.0 starts (go.opentelemetry.io/contrib/instrumentation/runtime
// v0.72.0). Its meter is created without a schema URL.
const (
	RuntimeScopeName    = "go.opentelemetry.io/contrib/instrumentation/runtime"
	RuntimeScopeVersion = "0.72.0"
)

// DefaultMinReadInterval is the contrib instrumentation's default minimum
// interval between two reads of the runtime; NewRuntime uses it for a
// non-positive interval, as the contrib instrumentation does.
const DefaultMinReadInterval = 15 * time.Second

// The runtime/metrics the set is computed from, in the order of Runtime.samples.
const (
	rmTotal = iota
	rmReleased
	rmStacks
	rmLimit
	rmAllocBytes
	rmAllocObjects
	rmGoal
	rmGoroutines
	rmMaxProcs
	rmGOGC
	rmCount
)

var runtimeSampleNames = [rmCount]string{
	rmTotal:        "/memory/classes/total:bytes",
	rmReleased:     "/memory/classes/heap/released:bytes",
	rmStacks:       "/memory/classes/heap/stacks:bytes",
	rmLimit:        "/gc/gomemlimit:bytes",
	rmAllocBytes:   "/gc/heap/allocs:bytes",
	rmAllocObjects: "/gc/heap/allocs:objects",
	rmGoal:         "/gc/heap/goal:bytes",
	rmGoroutines:   "/sched/goroutines:goroutines",
	rmMaxProcs:     "/sched/gomaxprocs:threads",
	rmGOGC:         "/gc/gogc:percent",
}

// The attribute sets of go.memory.used. They are shared by every Scope
// returned and must not be modified.
var (
	memoryTypeStack = []metricdata.Attr{metricdata.String("go.memory.type", "stack")}
	memoryTypeOther = []metricdata.Attr{metricdata.String("go.memory.type", "other")}
)

// Runtime is the OpenTelemetry contrib runtime instrumentation's metric set
// (semantic conventions v1.43 "go.*" metrics), read from runtime/metrics:
//
//	go.memory.used         By            up-down counter, go.memory.type=stack|other
//	go.memory.limit        By            up-down counter, only while a memory limit is set
//	go.memory.allocated    By            counter
//	go.memory.allocations  {allocation}  counter
//	go.memory.gc.goal      By            up-down counter
//	go.goroutine.count     {goroutine}   up-down counter
//	go.processor.limit     {thread}      up-down counter
//	go.config.gogc         %             up-down counter
//
// All are asynchronous int64 instruments: cumulative Sums starting when
// the Runtime was created. As in the contrib instrumentation, the runtime
// is read at most once per minimum read interval; a collection in between
// reports the previous values at the new time. Scope is safe for
// concurrent use.
type Runtime struct {
	interval time.Duration
	now      func() time.Time
	start    int64 // Unix ns

	mu      sync.Mutex
	read    bool
	last    time.Time
	samples [rmCount]metrics.Sample
	values  [rmCount]int64
}

// NewRuntime returns the set, reading the runtime at most once per
// minReadInterval (DefaultMinReadInterval when not positive) as measured by
// now (time.Now when nil). Its Sums start now.
func NewRuntime(minReadInterval time.Duration, now func() time.Time) *Runtime {
	if minReadInterval <= 0 {
		minReadInterval = DefaultMinReadInterval
	}
	if now == nil {
		now = time.Now
	}
	r := &Runtime{interval: minReadInterval, now: now, start: now().UnixNano()}
	for i, name := range runtimeSampleNames {
		r.samples[i].Name = name
	}
	return r
}

// refresh reads the runtime unless it was read less than the interval ago.
// r.mu must be held.
func (r *Runtime) refresh(now time.Time) {
	if r.read && now.Sub(r.last) < r.interval {
		return
	}
	metrics.Read(r.samples[:])
	for i := range r.samples {
		r.values[i] = sampleInt(r.samples[i].Value)
	}
	r.read, r.last = true, now
}

// sampleInt is an integer sample as int64, clamped to math.MaxInt64; 0 for a
// metric the runtime does not know.
func sampleInt(v metrics.Value) int64 {
	if v.Kind() != metrics.KindUint64 {
		return 0
	}
	if u := v.Uint64(); u <= math.MaxInt64 {
		return int64(u)
	}
	return math.MaxInt64
}

// Scope collects the set now. The returned Scope is the caller's, except
// the attribute slices of go.memory.used, which are shared and read-only.
func (r *Runtime) Scope() metricdata.Scope {
	r.mu.Lock()
	now := r.now()
	r.refresh(now)
	v := r.values
	r.mu.Unlock()

	t := now.UnixNano()
	// One backing array for every point: one allocation instead of nine.
	points := make([]metricdata.Point, 0, 9)
	pts := func(values ...int64) []metricdata.Point {
		from := len(points)
		for _, value := range values {
			points = append(points, metricdata.Point{Start: r.start, Time: t, Value: float64(value)})
		}
		return points[from:len(points):len(points)]
	}
	ms := make([]metricdata.Metric, 0, 8)
	add := func(name, unit, desc string, monotonic bool, points []metricdata.Point) {
		ms = append(ms, metricdata.Metric{
			Name: name, Unit: unit, Description: desc,
			Kind: metricdata.Sum, Monotonic: monotonic, IsInt: true, Points: points,
		})
	}

	stack := v[rmStacks]
	used := pts(stack, v[rmTotal]-v[rmReleased]-stack)
	used[0].Attrs, used[1].Attrs = memoryTypeStack, memoryTypeOther
	add("go.memory.used", "By", "Memory used by the Go runtime.", false, used)
	if v[rmLimit] != math.MaxInt64 {
		add("go.memory.limit", "By", "Go runtime memory limit configured by the user, if a limit exists.", false, pts(v[rmLimit]))
	}
	add("go.memory.allocated", "By", "Memory allocated to the heap by the application.", true, pts(v[rmAllocBytes]))
	add("go.memory.allocations", "{allocation}", "Count of allocations to the heap by the application.", true, pts(v[rmAllocObjects]))
	add("go.memory.gc.goal", "By", "Heap size target for the end of the GC cycle.", false, pts(v[rmGoal]))
	add("go.goroutine.count", "{goroutine}", "Count of live goroutines.", false, pts(v[rmGoroutines]))
	add("go.processor.limit", "{thread}", "The number of OS threads that can execute user-level Go code simultaneously.", false, pts(v[rmMaxProcs]))
	add("go.config.gogc", "%", "Heap size target percentage configured by the user, otherwise 100.", false, pts(v[rmGOGC]))

	return metricdata.Scope{Name: RuntimeScopeName, Version: RuntimeScopeVersion, Metrics: ms}
}
