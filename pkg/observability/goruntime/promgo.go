package goruntime

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"time"
)

// The Prometheus Go collector's values at one collection. With its default
// options it reads no runtime.MemStats: its go_memstats_* families are
// computed from runtime/metrics (as documented in their help texts), its
// go_gc_duration_seconds summary from debug.ReadGCStats, and it exposes
// three runtime/metrics as they are (go_gc_gogc_percent,
// go_gc_gomemlimit_bytes, go_sched_gomaxprocs_threads).

// Indexes of goSampleNames.
const (
	gsTinyAllocs = iota
	gsAllocObjects
	gsFreeObjects
	gsAllocBytes
	gsHeapObjects
	gsHeapGoal
	gsTotal
	gsHeapObjectBytes
	gsHeapUnused
	gsHeapReleased
	gsHeapFree
	gsHeapStacks
	gsOSStacks
	gsMSpanInuse
	gsMSpanFree
	gsMCacheInuse
	gsMCacheFree
	gsProfBuckets
	gsMetadataOther
	gsOther
	gsGOGC
	gsMemLimit
	gsMaxProcs
	gsCount
)

var goSampleNames = [gsCount]string{
	gsTinyAllocs:      "/gc/heap/tiny/allocs:objects",
	gsAllocObjects:    "/gc/heap/allocs:objects",
	gsFreeObjects:     "/gc/heap/frees:objects",
	gsAllocBytes:      "/gc/heap/allocs:bytes",
	gsHeapObjects:     "/gc/heap/objects:objects",
	gsHeapGoal:        "/gc/heap/goal:bytes",
	gsTotal:           "/memory/classes/total:bytes",
	gsHeapObjectBytes: "/memory/classes/heap/objects:bytes",
	gsHeapUnused:      "/memory/classes/heap/unused:bytes",
	gsHeapReleased:    "/memory/classes/heap/released:bytes",
	gsHeapFree:        "/memory/classes/heap/free:bytes",
	gsHeapStacks:      "/memory/classes/heap/stacks:bytes",
	gsOSStacks:        "/memory/classes/os-stacks:bytes",
	gsMSpanInuse:      "/memory/classes/metadata/mspan/inuse:bytes",
	gsMSpanFree:       "/memory/classes/metadata/mspan/free:bytes",
	gsMCacheInuse:     "/memory/classes/metadata/mcache/inuse:bytes",
	gsMCacheFree:      "/memory/classes/metadata/mcache/free:bytes",
	gsProfBuckets:     "/memory/classes/profiling/buckets:bytes",
	gsMetadataOther:   "/memory/classes/metadata/other:bytes",
	gsOther:           "/memory/classes/other:bytes",
	gsGOGC:            "/gc/gogc:percent",
	gsMemLimit:        "/gc/gomemlimit:bytes",
	gsMaxProcs:        "/sched/gomaxprocs:threads",
}

// gcQuantiles are the go_gc_duration_seconds quantiles: the minimum,
// quartiles and maximum of the recent stop-the-world pauses.
var gcQuantiles = [5]string{"0", "0.25", "0.5", "0.75", "1"}

// goValues are the Go collector's inputs at one collection.
type goValues struct {
	rm         [gsCount]uint64 // 0 for a metric this Go version lacks
	goroutines float64
	threads    float64

	gcCount     uint64
	gcSum       float64 // seconds
	gcQuantiles [len(gcQuantiles)]float64
	lastGC      float64 // seconds since the epoch; 0 before the first GC
}

// goReader reads goValues, reusing its buffers. It is not safe for
// concurrent use.
type goReader struct {
	samples [gsCount]metrics.Sample
	gc      debug.GCStats
}

func newGoReader() *goReader {
	r := &goReader{}
	for i, name := range goSampleNames {
		r.samples[i].Name = name
	}
	r.gc.PauseQuantiles = make([]time.Duration, len(gcQuantiles))
	return r
}

func (r *goReader) read(v *goValues) {
	v.goroutines = float64(runtime.NumGoroutine())
	n, _ := runtime.ThreadCreateProfile(nil)
	v.threads = float64(n)

	debug.ReadGCStats(&r.gc)
	v.gcCount = uint64(r.gc.NumGC)
	v.gcSum = r.gc.PauseTotal.Seconds()
	for i, d := range r.gc.PauseQuantiles {
		v.gcQuantiles[i] = d.Seconds()
	}
	v.lastGC = float64(r.gc.LastGC.UnixNano()) / 1e9

	metrics.Read(r.samples[:])
	for i, s := range r.samples {
		v.rm[i] = 0
		if s.Value.Kind() == metrics.KindUint64 {
			v.rm[i] = s.Value.Uint64()
		}
	}
}

// runtimeHelp is the help text the Go collector gives a metric it exposes
// from runtime/metrics: the runtime's own description and where it comes
// from. It is empty when this Go version does not have the metric; the
// collector then leaves it out.
func runtimeHelp(name string) string {
	for _, d := range metrics.All() {
		if d.Name == name {
			return d.Description + " Sourced from " + name + "."
		}
	}
	return ""
}

// memStatFamilies are the go_memstats_* families in name order, each with
// the client's help text and its value from runtime/metrics, computed as
// the client computes its runtime.MemStats-like struct (tiny allocations
// count as both allocated and freed objects).
func memStatFamilies() []family {
	type sum []int // the value is the sum of these samples
	list := []struct {
		name, help string
		of         sum
	}{
		{"alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", sum{gsHeapObjectBytes}},
		{"alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", sum{gsAllocBytes}},
		{"buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", sum{gsProfBuckets}},
		{"frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", sum{gsFreeObjects, gsTinyAllocs}},
		{"gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", sum{gsMetadataOther}},
		{"heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", sum{gsHeapObjectBytes}},
		{"heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", sum{gsHeapReleased, gsHeapFree}},
		{"heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", sum{gsHeapObjectBytes, gsHeapUnused}},
		{"heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", sum{gsHeapObjects}},
		{"heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", sum{gsHeapReleased}},
		{"heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", sum{gsHeapObjectBytes, gsHeapUnused, gsHeapReleased, gsHeapFree}},
		{"last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", nil},
		{"mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", sum{gsAllocObjects, gsTinyAllocs}},
		{"mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", sum{gsMCacheInuse}},
		{"mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", sum{gsMCacheInuse, gsMCacheFree}},
		{"mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", sum{gsMSpanInuse}},
		{"mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", sum{gsMSpanInuse, gsMSpanFree}},
		{"next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", sum{gsHeapGoal}},
		{"other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", sum{gsOther}},
		{"stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", sum{gsHeapStacks}},
		{"stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", sum{gsHeapStacks, gsOSStacks}},
		{"sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", sum{gsTotal}},
	}
	fs := make([]family, 0, len(list))
	for _, m := range list {
		f := family{name: "go_memstats_" + m.name, help: m.help, typ: "gauge"}
		if strings.HasSuffix(m.name, "_total") {
			f.typ = "counter"
		}
		if m.of == nil { // last_gc_time_seconds
			f.value = func(s *snapshot) (float64, bool) { return s.lastGC, true }
		} else {
			of := m.of
			f.value = func(s *snapshot) (float64, bool) {
				var v uint64
				for _, i := range of {
					v += s.rm[i]
				}
				return float64(v), true
			}
		}
		fs = append(fs, f)
	}
	return fs
}
