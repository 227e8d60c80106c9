package observability

import (
	"runtime"

	"go.opencensus.io/stats"
)

// memStat is one revision_go_* gauge: a runtime.MemStats field. Its name is
// "go_" and the field's name in snake case (HeapInuse -> go_heap_inuse),
// except the two times, which are in seconds and named for it
// (LastGC -> go_last_gc_timestamp_seconds, PauseTotalNs ->
// go_pause_total_seconds) so that Prometheus' linter finds no abbreviated
// unit.
type memStat struct {
	name, help string
	get        func(*runtime.MemStats) float64
	measure    *stats.Float64Measure
}

// memStats are the memory gauges, refreshed every MemStatsPeriod. They are
// the scalar fields of runtime.MemStats, less Lookups (always 0 since Go
// 1.?), EnableGC and DebugGC (constants) and the PauseNs, PauseEnd and
// BySize arrays (not gauges).
var memStats = newMemStats([]memStat{
	{name: "go_alloc", help: "Bytes of allocated heap objects (runtime.MemStats.Alloc)", get: func(s *runtime.MemStats) float64 { return float64(s.Alloc) }},
	{name: "go_total_alloc", help: "Cumulative bytes allocated for heap objects (runtime.MemStats.TotalAlloc)", get: func(s *runtime.MemStats) float64 { return float64(s.TotalAlloc) }},
	{name: "go_sys", help: "Total bytes of memory obtained from the OS (runtime.MemStats.Sys)", get: func(s *runtime.MemStats) float64 { return float64(s.Sys) }},
	{name: "go_mallocs", help: "Cumulative count of heap objects allocated (runtime.MemStats.Mallocs)", get: func(s *runtime.MemStats) float64 { return float64(s.Mallocs) }},
	{name: "go_frees", help: "Cumulative count of heap objects freed (runtime.MemStats.Frees)", get: func(s *runtime.MemStats) float64 { return float64(s.Frees) }},
	{name: "go_heap_alloc", help: "Bytes of allocated heap objects (runtime.MemStats.HeapAlloc)", get: func(s *runtime.MemStats) float64 { return float64(s.HeapAlloc) }},
	{name: "go_heap_sys", help: "Bytes of heap memory obtained from the OS (runtime.MemStats.HeapSys)", get: func(s *runtime.MemStats) float64 { return float64(s.HeapSys) }},
	{name: "go_heap_idle", help: "Bytes in idle (unused) heap spans (runtime.MemStats.HeapIdle)", get: func(s *runtime.MemStats) float64 { return float64(s.HeapIdle) }},
	{name: "go_heap_inuse", help: "Bytes in in-use heap spans (runtime.MemStats.HeapInuse)", get: func(s *runtime.MemStats) float64 { return float64(s.HeapInuse) }},
	{name: "go_heap_released", help: "Bytes of physical memory returned to the OS (runtime.MemStats.HeapReleased)", get: func(s *runtime.MemStats) float64 { return float64(s.HeapReleased) }},
	{name: "go_heap_objects", help: "Number of allocated heap objects (runtime.MemStats.HeapObjects)", get: func(s *runtime.MemStats) float64 { return float64(s.HeapObjects) }},
	{name: "go_stack_inuse", help: "Bytes in stack spans (runtime.MemStats.StackInuse)", get: func(s *runtime.MemStats) float64 { return float64(s.StackInuse) }},
	{name: "go_stack_sys", help: "Bytes of stack memory obtained from the OS (runtime.MemStats.StackSys)", get: func(s *runtime.MemStats) float64 { return float64(s.StackSys) }},
	{name: "go_mspan_inuse", help: "Bytes of allocated mspan structures (runtime.MemStats.MSpanInuse)", get: func(s *runtime.MemStats) float64 { return float64(s.MSpanInuse) }},
	{name: "go_mspan_sys", help: "Bytes of memory obtained from the OS for mspan structures (runtime.MemStats.MSpanSys)", get: func(s *runtime.MemStats) float64 { return float64(s.MSpanSys) }},
	{name: "go_mcache_inuse", help: "Bytes of allocated mcache structures (runtime.MemStats.MCacheInuse)", get: func(s *runtime.MemStats) float64 { return float64(s.MCacheInuse) }},
	{name: "go_mcache_sys", help: "Bytes of memory obtained from the OS for mcache structures (runtime.MemStats.MCacheSys)", get: func(s *runtime.MemStats) float64 { return float64(s.MCacheSys) }},
	{name: "go_buck_hash_sys", help: "Bytes of memory in profiling bucket hash tables (runtime.MemStats.BuckHashSys)", get: func(s *runtime.MemStats) float64 { return float64(s.BuckHashSys) }},
	{name: "go_gc_sys", help: "Bytes of memory in garbage collection metadata (runtime.MemStats.GCSys)", get: func(s *runtime.MemStats) float64 { return float64(s.GCSys) }},
	{name: "go_other_sys", help: "Bytes of memory in miscellaneous off-heap runtime allocations (runtime.MemStats.OtherSys)", get: func(s *runtime.MemStats) float64 { return float64(s.OtherSys) }},
	{name: "go_next_gc", help: "Target heap size of the next GC cycle in bytes (runtime.MemStats.NextGC)", get: func(s *runtime.MemStats) float64 { return float64(s.NextGC) }},
	{name: "go_last_gc_timestamp_seconds", help: "Time the last garbage collection finished, in seconds since the Unix epoch; 0 before the first (runtime.MemStats.LastGC)", get: func(s *runtime.MemStats) float64 { return float64(s.LastGC) / 1e9 }},
	{name: "go_pause_total_seconds", help: "Cumulative seconds in GC stop-the-world pauses (runtime.MemStats.PauseTotalNs)", get: func(s *runtime.MemStats) float64 { return float64(s.PauseTotalNs) / 1e9 }},
	{name: "go_num_gc", help: "Number of completed GC cycles (runtime.MemStats.NumGC)", get: func(s *runtime.MemStats) float64 { return float64(s.NumGC) }},
	{name: "go_num_forced_gc", help: "Number of GC cycles forced by the application calling runtime.GC (runtime.MemStats.NumForcedGC)", get: func(s *runtime.MemStats) float64 { return float64(s.NumForcedGC) }},
	{name: "go_gc_cpu_fraction", help: "Fraction of this program's available CPU time used by the GC since the program started (runtime.MemStats.GCCPUFraction)", get: func(s *runtime.MemStats) float64 { return s.GCCPUFraction }},
})

func newMemStats(list []memStat) []memStat {
	for i := range list {
		list[i].measure = stats.Float64("queue-proxy/"+list[i].name, list[i].help, stats.UnitDimensionless)
	}
	return list
}

// recordMemStats reads the memory statistics (a short stop-the-world) and
// records every gauge in one call.
func (m *Metrics) recordMemStats() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	ms := make([]stats.Measurement, len(memStats))
	for i, st := range memStats {
		ms[i] = st.measure.M(st.get(&s))
	}
	m.record(m.emptyTags, ms)
}
