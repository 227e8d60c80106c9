package spanexport

import (
	"context"

	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
	"go.opencensus.io/trace"
)

// Client sends encoded OTLP trace export requests; *otlp.Client is one.
// Export sends body, one serialized ExportTraceServiceRequest, honouring
// ctx; the body is the caller's again once Export returns. Close releases
// the client's connections: it may be called more than once, and while an
// Export that ignored its context is still running.
type Client interface {
	Export(ctx context.Context, body []byte) error
	Close()
}

var _ Client = (*otlp.Client)(nil)

// maxKeptBuffer bounds the encoding buffer kept between exports, so that
// one exceptionally large batch does not pin its memory for good.
const maxKeptBuffer = 4 << 20

// OTLP is a trace.Exporter that sends spans over OTLP in batches.
//
// ExportSpan queues the span in a spanbatch.Processor: it never blocks
// and does not allocate; a span that finds the queue full, or comes after
// Shutdown, is dropped and counted (Dropped, spanbatch.Config.OnDrop).
// The processor hands batches, one at a time, to a goroutine of its own,
// where each batch is grouped by scope (in Source.Scopes order, spans in
// arrival order within a scope, scopes without spans left out), encoded
// into a buffer reused from batch to batch and sent with Client.Export.
// A failed export is reported to onError.
type OTLP struct {
	proc   *spanbatch.Processor
	client Client
	src    Source

	// Owned by export, which the processor calls from its goroutine,
	// never twice at once.
	buf    []byte
	groups [][]*trace.SpanData // the batch's spans by scope index
	scopes []otlp.SpanScope    // the non-empty groups, as encoded
}

var _ trace.Exporter = (*OTLP)(nil)

// NewOTLP starts an OTLP exporter sending through client (not nil), with
// the queue and batches batch configures. Spans are attributed to src.
// Failed exports are reported to onError (nil: ignored), from the
// processor's goroutine. Shutdown stops it.
func NewOTLP(client Client, batch spanbatch.Config, src Source, onError func(error)) *OTLP {
	e := &OTLP{client: client, src: src.normalized()}
	e.groups = make([][]*trace.SpanData, len(e.src.Scopes))
	e.scopes = make([]otlp.SpanScope, 0, len(e.src.Scopes))
	e.proc = spanbatch.New(batch, e.export, onError)
	return e
}

// ExportSpan implements trace.Exporter: it queues sd for export, or drops
// and counts it. It never blocks.
func (e *OTLP) ExportSpan(sd *trace.SpanData) {
	e.proc.ExportSpan(sd)
}

// Dropped is the number of spans dropped so far: those that found the
// queue full or came after Shutdown, and those Shutdown abandoned.
func (e *OTLP) Dropped() uint64 {
	return e.proc.Dropped()
}

// Shutdown stops accepting spans, exports those queued, and then closes
// the client. When ctx ends first, the export in progress is cancelled,
// the spans not yet exported are dropped, the client is closed all the
// same and ctx's error is returned; calling Shutdown again (it closes the
// client again) waits for an export that ignores its context. From the
// first call on, ExportSpan drops and counts its span.
func (e *OTLP) Shutdown(ctx context.Context) error {
	err := e.proc.Shutdown(ctx)
	e.client.Close()
	return err
}

// export is the processor's ExportFunc: it groups spans by scope, encodes
// them and sends the request.
func (e *OTLP) export(ctx context.Context, spans []*trace.SpanData) error {
	e.group(spans)
	e.buf = otlp.AppendTraceRequest(e.buf[:0], e.src.Resource, e.src.ResourceSchemaURL, e.scopes)
	err := e.client.Export(ctx, e.buf)
	e.release()
	return err
}

// group fills groups and scopes with spans.
func (e *OTLP) group(spans []*trace.SpanData) {
	for _, sd := range spans {
		i := e.src.scopeIndex(sd)
		e.groups[i] = append(e.groups[i], sd)
	}
	for i, g := range e.groups {
		if len(g) == 0 {
			continue
		}
		s := e.src.Scopes[i]
		e.scopes = append(e.scopes, otlp.SpanScope{Name: s.Name, Version: s.Version, SchemaURL: s.SchemaURL, Spans: g})
	}
}

// release forgets the batch's spans, so that they can be collected, and
// keeps the buffers for the next batch.
func (e *OTLP) release() {
	for i := range e.groups {
		clear(e.groups[i])
		e.groups[i] = e.groups[i][:0]
	}
	clear(e.scopes)
	e.scopes = e.scopes[:0]
	if cap(e.buf) > maxKeptBuffer {
		e.buf = nil
	}
}
