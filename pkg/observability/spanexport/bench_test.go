package spanexport

import (
	"context"
	"io"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
)

// BenchmarkOTLPExportSpan measures the request path, ExportSpan, when
// the span is queued (the processor's goroutine collecting spans
// meanwhile) and when the queue is full and it is dropped.
func BenchmarkOTLPExportSpan(b *testing.B) {
	src := Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}
	sd := testSpan("a1")
	ctx := context.Background()
	b.Run("queued", func(b *testing.B) {
		// Exporters whose queue and batch hold a chunk of spans, made
		// and shut down with the timer stopped: the goroutine only
		// collects spans while the timer runs.
		const chunk = 4096
		cfg := spanbatch.Config{MaxQueueSize: chunk + 1, MaxExportBatchSize: chunk + 1, Clock: fakeClock()}
		var dropped uint64
		b.ReportAllocs()
		for n := 0; n < b.N; {
			b.StopTimer()
			e := NewOTLP(nopClient{}, cfg, src, nil)
			b.StartTimer()
			for i := 0; i < chunk && n < b.N; i, n = i+1, n+1 {
				e.ExportSpan(sd)
			}
			b.StopTimer()
			dropped += e.Dropped()
			if err := e.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if dropped != 0 {
			b.Fatalf("%d spans dropped", dropped)
		}
	})
	b.Run("dropped", func(b *testing.B) {
		client := newFakeClient(1, true)
		e := NewOTLP(client, spanbatch.Config{MaxQueueSize: 1, MaxExportBatchSize: 1, Clock: fakeClock()}, src, nil)
		e.ExportSpan(sd)
		<-client.bodies  // its export is in progress, and waits for release
		e.ExportSpan(sd) // fills the queue
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e.ExportSpan(sd)
			}
		})
		b.StopTimer()
		close(client.release)
		if err := e.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		if got := e.Dropped(); got != uint64(b.N) {
			b.Fatalf("%d spans dropped, want %d", got, b.N)
		}
	})
}

// BenchmarkOTLPExportBatch measures the processor's side: grouping and
// encoding one full default batch (512 spans).
func BenchmarkOTLPExportBatch(b *testing.B) {
	e := NewOTLP(nopClient{}, spanbatch.Config{Clock: fakeClock()}, Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}, nil)
	defer func() { _ = e.Shutdown(context.Background()) }()
	spans := testSpans("a1", "b1", "a2", "c1")
	for len(spans) < spanbatch.DefaultMaxExportBatchSize {
		spans = append(spans, spans[:min(len(spans), spanbatch.DefaultMaxExportBatchSize-len(spans))]...)
	}
	ctx := context.Background()
	if err := e.export(ctx, spans); err != nil { // grows the buffers
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.export(ctx, spans); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(e.buf)), "bytes/batch")
}

// BenchmarkStdoutExportSpan measures printing one span (to io.Discard).
func BenchmarkStdoutExportSpan(b *testing.B) {
	e := NewStdout(io.Discard, Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}, nil)
	sd := testSpan("a1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.ExportSpan(sd)
		}
	})
}
