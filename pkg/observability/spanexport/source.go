package spanexport

import (
	"slices"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	"go.opencensus.io/trace"
)

// Scope is an instrumentation scope: the name, version and schema URL a
// tracer was created with.
type Scope struct {
	Name, Version, SchemaURL string
}

// Source describes where spans come from: the process's resource (its
// attributes, in the order they are to be written, and schema URL) and the
// scopes of its tracers. ScopeOf says which of Scopes a span belongs to,
// as an index; it is called once per exported span, possibly from several
// goroutines at once, and must not block.
//
// A Source without Scopes has one Scope{} (no name); a nil ScopeOf, or an
// index outside Scopes, means Scopes[0]. The exporters copy Resource and
// Scopes: changing them afterwards has no effect.
type Source struct {
	Resource          []metricdata.Attr
	ResourceSchemaURL string
	Scopes            []Scope
	ScopeOf           func(*trace.SpanData) int
}

// normalized returns a copy of s that owns its slices and has at least
// one scope.
func (s Source) normalized() Source {
	s.Resource = slices.Clone(s.Resource)
	s.Scopes = slices.Clone(s.Scopes)
	if len(s.Scopes) == 0 {
		s.Scopes = []Scope{{}}
	}
	return s
}

// scopeIndex is the index in Scopes of sd's scope. s must be normalized.
func (s *Source) scopeIndex(sd *trace.SpanData) int {
	if s.ScopeOf == nil {
		return 0
	}
	if i := s.ScopeOf(sd); i >= 0 && i < len(s.Scopes) {
		return i
	}
	return 0
}
