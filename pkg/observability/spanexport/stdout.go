package spanexport

import (
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	"github.com/queue-proxy/queue-proxy/pkg/observability/stdouttrace"
	"go.opencensus.io/trace"
)

// maxPooledLine bounds the line buffers kept for reuse, so that one huge
// span does not pin its memory in the pool.
const maxPooledLine = 64 << 10

// Stdout is a trace.Exporter that prints each span, as soon as it ends,
// as the line the OpenTelemetry SDK's stdout trace exporter would print
// (stdouttrace.AppendSpan), with a single Write call to its writer. The
// writer may be shared (with the request log): it must serialise
// concurrent Writes itself. A span the SDK could not encode is not
// printed. The resource's schema URL is not part of the line.
//
// ExportSpan is safe for concurrent use; lines are built in pooled
// buffers. A failed Write is reported to onError.
type Stdout struct {
	w       io.Writer
	src     Source
	scopes  []stdouttrace.Scope // src.Scopes, as AppendSpan takes them
	onError func(error)
	lines   sync.Pool // of *[]byte
}

var _ trace.Exporter = (*Stdout)(nil)

// NewStdout returns a Stdout writing to w (not nil) spans attributed to
// src, and reporting write errors to onError (nil: ignored).
func NewStdout(w io.Writer, src Source, onError func(error)) *Stdout {
	e := &Stdout{w: w, src: src.normalized(), onError: onError}
	e.src.Resource = sdkResource(e.src.Resource)
	e.scopes = make([]stdouttrace.Scope, len(e.src.Scopes))
	for i, s := range e.src.Scopes {
		e.scopes[i] = stdouttrace.Scope{Name: s.Name, Version: s.Version, SchemaURL: s.SchemaURL}
	}
	e.lines.New = func() any {
		b := make([]byte, 0, 2048)
		return &b
	}
	return e
}

// ExportSpan implements trace.Exporter: it writes sd's line.
func (e *Stdout) ExportSpan(sd *trace.SpanData) {
	if sd == nil {
		return
	}
	bp := e.lines.Get().(*[]byte)
	line := stdouttrace.AppendSpan((*bp)[:0], sd, e.src.Resource, e.scopes[e.src.scopeIndex(sd)])
	if len(line) > 0 {
		if _, err := e.w.Write(line); err != nil && e.onError != nil {
			e.onError(err)
		}
	}
	if cap(line) <= maxPooledLine {
		*bp = line
		e.lines.Put(bp)
	}
}

// sdkResource returns attrs as an OpenTelemetry SDK resource holds them:
// sorted by key, the last of duplicated keys winning, empty keys dropped.
// AppendSpan prints the same line for them as for attrs, but without
// sorting a copy for every span.
func sdkResource(attrs []metricdata.Attr) []metricdata.Attr {
	out := make([]metricdata.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a.Key == "" {
			continue
		}
		if i := slices.IndexFunc(out, func(b metricdata.Attr) bool { return b.Key == a.Key }); i >= 0 {
			out[i] = a
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b metricdata.Attr) int { return strings.Compare(a.Key, b.Key) })
	return out
}
