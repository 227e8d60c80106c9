package goruntime

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// PromDefaults writes the metric families that the Prometheus client
// library's default registry holds (a Go collector and a process collector
// with default options) together with the two metrics its promhttp handler
// keeps about its own scrapes. Knative v0.51.0 serves them on :9091 beside
// the OpenTelemetry exporter's families because that exporter registers on
// the default registry.
//
// Families, in the order written (sorted by name, as the client gathers them):
//
//	go_gc_duration_seconds                     summary  debug.ReadGCStats: pause quantiles 0, 0.25, 0.5, 0.75, 1; total pause; GC count
//	go_gc_gogc_percent                         gauge    runtime/metrics /gc/gogc:percent
//	go_gc_gomemlimit_bytes                     gauge    runtime/metrics /gc/gomemlimit:bytes
//	go_goroutines                              gauge    runtime.NumGoroutine
//	go_info{version}                           gauge    1, version = runtime.Version()
//	go_memstats_*                              gauge or counter (_total), from runtime/metrics (see memStatFamilies)
//	go_memstats_last_gc_time_seconds           gauge    debug.ReadGCStats LastGC
//	go_sched_gomaxprocs_threads                gauge    runtime/metrics /sched/gomaxprocs:threads
//	go_threads                                 gauge    runtime.ThreadCreateProfile
//	process_*                                  /proc (see procReader.read); a group that cannot be read is left out
//	promhttp_metric_handler_requests_in_flight gauge    scrapes being served through Instrument (a scrape sees itself)
//	promhttp_metric_handler_requests_total{code} counter scrapes finished through Instrument; codes 200, 500, 503 always present
//
// Append and Instrument are safe for concurrent use.
type PromDefaults struct {
	families []family

	mu   sync.Mutex // guards the readers and v
	gor  *goReader
	proc *procReader
	v    snapshot

	inFlight atomic.Int64
	codes    [600]atomic.Uint64 // by status code, 100-599
	unknown  atomic.Uint64      // codes outside 100-599
}

// snapshot is everything one Append writes.
type snapshot struct {
	goValues
	proc procValues
}

// family is one metric family: either a single unlabelled sample (value)
// or samples written by write. A family whose value is not ok is left out.
type family struct {
	name, help, typ string
	value           func(*snapshot) (float64, bool)
	write           func(b []byte, p *PromDefaults, name string) []byte
}

// NewPromDefaults returns the families of this process, read from /proc.
func NewPromDefaults() *PromDefaults { return newPromDefaults("/proc") }

func newPromDefaults(procRoot string) *PromDefaults {
	p := &PromDefaults{gor: newGoReader(), proc: newProcReader(procRoot)}
	p.families = promFamilies()
	return p
}

// Append appends the families in the text format 0.0.4.
func (p *PromDefaults) Append(b []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gor.read(&p.v.goValues)
	p.proc.read(&p.v.proc)
	for i := range p.families {
		f := &p.families[i]
		if f.write != nil {
			b = appendHeader(b, f.name, f.help, f.typ)
			b = f.write(b, p, f.name)
			continue
		}
		v, ok := f.value(&p.v)
		if !ok {
			continue
		}
		b = appendHeader(b, f.name, f.help, f.typ)
		b = appendSample(b, f.name, "", "", v)
	}
	return b
}

func always(v float64) (float64, bool) { return v, true }

// promFamilies lists the families in name order. Help texts are the
// Prometheus client's (client_golang v1.25.0), word for word.
func promFamilies() []family {
	rm := func(i int) func(*snapshot) (float64, bool) {
		return func(s *snapshot) (float64, bool) { return float64(s.rm[i]), true }
	}
	fs := []family{
		{name: "go_gc_duration_seconds", typ: "summary", help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", write: writeGCDuration},
		{name: "go_gc_gogc_percent", typ: "gauge", help: runtimeHelp(goSampleNames[gsGOGC]), value: rm(gsGOGC)},
		{name: "go_gc_gomemlimit_bytes", typ: "gauge", help: runtimeHelp(goSampleNames[gsMemLimit]), value: rm(gsMemLimit)},
		{name: "go_goroutines", typ: "gauge", help: "Number of goroutines that currently exist.", value: func(s *snapshot) (float64, bool) { return always(s.goroutines) }},
		{name: "go_info", typ: "gauge", help: "Information about the Go environment.", write: writeGoInfo},
	}
	fs = append(fs, memStatFamilies()...)
	fs = append(fs,
		family{name: "go_sched_gomaxprocs_threads", typ: "gauge", help: runtimeHelp(goSampleNames[gsMaxProcs]), value: rm(gsMaxProcs)},
		family{name: "go_threads", typ: "gauge", help: "Number of OS threads created.", value: func(s *snapshot) (float64, bool) { return always(s.threads) }},
	)
	fs = append(fs, processFamilies()...)
	fs = append(fs,
		family{name: "promhttp_metric_handler_requests_in_flight", typ: "gauge", help: "Current number of scrapes being served.", write: writeInFlight},
		family{name: "promhttp_metric_handler_requests_total", typ: "counter", help: "Total number of scrapes by HTTP status code.", write: writeRequestsTotal},
	)
	// A runtime/metrics family this Go version lacks has no help text: the
	// client leaves it out.
	kept := fs[:0]
	for _, f := range fs {
		if f.help != "" {
			kept = append(kept, f)
		}
	}
	return kept
}

func writeGCDuration(b []byte, p *PromDefaults, name string) []byte {
	for i, q := range gcQuantiles {
		b = appendSample(b, name, "quantile", q, p.v.gcQuantiles[i])
	}
	b = appendSample(b, name+"_sum", "", "", p.v.gcSum)
	return appendSample(b, name+"_count", "", "", float64(p.v.gcCount))
}

func writeGoInfo(b []byte, _ *PromDefaults, name string) []byte {
	return appendSample(b, name, "version", runtime.Version(), 1)
}

func writeInFlight(b []byte, p *PromDefaults, name string) []byte {
	return appendSample(b, name, "", "", float64(p.inFlight.Load()))
}

// writeRequestsTotal writes one sample per status code seen, and always
// 200, 500 and 503 (promhttp initialises them), in label order.
func writeRequestsTotal(b []byte, p *PromDefaults, name string) []byte {
	for c := 100; c < len(p.codes); c++ {
		n := p.codes[c].Load()
		if n == 0 && c != 200 && c != 500 && c != 503 {
			continue
		}
		b = appendSample(b, name, "code", strconv.Itoa(c), float64(n))
	}
	if n := p.unknown.Load(); n > 0 {
		b = appendSample(b, name, "code", "unknown", float64(n))
	}
	return b
}
