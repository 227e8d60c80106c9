package spanexport

import (
	"context"
	"io"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
)

// BenchmarkOTLPExportSpan measures the request path: queueing a span
// while the processor's goroutine encodes and "sends" batches. Spans
// that find the queue full are dropped, as in production.
func BenchmarkOTLPExportSpan(b *testing.B) {
	e := NewOTLP(nopClient{}, spanbatch.Config{}, Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}, nil)
	sd := testSpan("a1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.ExportSpan(sd)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(e.Dropped())/float64(b.N), "dropped/op")
	if err := e.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOTLPExportBatch measures the processor's side: grouping and
// encoding one full default batch (512 spans).
func BenchmarkOTLPExportBatch(b *testing.B) {
	e := NewOTLP(nopClient{}, spanbatch.Config{}, Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}, nil)
	defer func() { _ = e.Shutdown(context.Background()) }()
	spans := testSpans("a1", "b1", "a2", "c1")
	for len(spans) < spanbatch.DefaultMaxExportBatchSize {
		spans = append(spans, spans[:min(len(spans), spanbatch.DefaultMaxExportBatchSize-len(spans))]...)
	}
	ctx := context.Background()
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
