package spanexport

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	"github.com/queue-proxy/queue-proxy/pkg/observability/stdouttrace"
	"go.opencensus.io/trace"
)

// wantLine is the line stdouttrace writes for sd in scope i of src.
func wantLine(src Source, i int, sd *trace.SpanData) []byte {
	s := src.normalized().Scopes[i]
	return stdouttrace.AppendSpan(nil, sd, src.Resource, stdouttrace.Scope{Name: s.Name, Version: s.Version, SchemaURL: s.SchemaURL})
}

func unencodable(name string) *trace.SpanData {
	sd := testSpan(name)
	sd.Attributes["ratio"] = math.NaN()
	return sd
}

func TestStdoutLines(t *testing.T) {
	withScopes := Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}
	tests := []struct {
		name   string
		src    Source
		spans  []*trace.SpanData
		scopes []int // the scope of each line written, in order
	}{{
		name:   "scopes by ScopeOf",
		src:    withScopes,
		spans:  testSpans("c1", "a1", "b1", "a2"),
		scopes: []int{2, 0, 1, 0},
	}, {
		name:   "index out of range: the first scope",
		src:    withScopes,
		spans:  testSpans("z1", "01"),
		scopes: []int{0, 0},
	}, {
		name:   "no scopes: one unnamed scope",
		src:    Source{ScopeOf: byLetter},
		spans:  testSpans("b1"),
		scopes: []int{0},
	}, {
		name: "resource unsorted, with duplicated and empty keys",
		src: Source{Resource: []metricdata.Attr{
			metricdata.String("z", "last"), metricdata.String("", "empty"), metricdata.Int("a", 1),
			metricdata.String("m", "first"), metricdata.String("m", "second"), metricdata.String("", "again"),
		}},
		spans:  testSpans("a1"),
		scopes: []int{0},
	}, {
		name:   "a span the SDK cannot encode is not written",
		src:    withScopes,
		spans:  []*trace.SpanData{testSpan("a1"), unencodable("a2"), nil, testSpan("b1")},
		scopes: []int{0, -1, -1, 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w writeLog
			e := NewStdout(&w, tt.src, func(err error) { t.Error("error reported:", err) })
			var want [][]byte
			for i, sd := range tt.spans {
				e.ExportSpan(sd)
				if tt.scopes[i] >= 0 {
					want = append(want, wantLine(tt.src, tt.scopes[i], sd))
				}
			}
			if len(w.writes) != len(want) {
				t.Fatalf("%d writes, want %d", len(w.writes), len(want))
			}
			for i, got := range w.writes {
				if !bytes.Equal(got, want[i]) {
					t.Errorf("write %d:\n got %s\nwant %s", i, got, want[i])
				}
				if bytes.Count(got, []byte("\n")) != 1 || !bytes.HasSuffix(got, []byte("\n")) {
					t.Errorf("write %d is not one line: %q", i, got)
				}
			}
		})
	}
}

func TestStdoutWriteErrors(t *testing.T) {
	tests := []struct {
		name    string
		onError bool
	}{{"reported", true}, {"ignored without onError", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := writeLog{err: errRefused}
			var errs errorLog
			onError := errs.report
			if !tt.onError {
				onError = nil
			}
			e := NewStdout(&w, Source{}, onError)
			e.ExportSpan(testSpan("a1"))
			e.ExportSpan(testSpan("a2"))
			want := 0
			if tt.onError {
				want = 2
			}
			got := errs.all()
			if len(got) != want || slices.ContainsFunc(got, func(err error) bool { return !errors.Is(err, errRefused) }) {
				t.Errorf("errors reported: %v, want %d times %v", got, want, errRefused)
			}
			if len(w.writes) != 2 {
				t.Errorf("%d writes, want 2", len(w.writes))
			}
		})
	}
}

func TestStdoutConcurrent(t *testing.T) {
	const goroutines, perGoroutine = 8, 50
	src := Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}
	var w writeLog
	e := NewStdout(&w, src, nil)
	var want []string
	var wg sync.WaitGroup
	for g := range goroutines {
		spans := make([]*trace.SpanData, perGoroutine)
		for i := range spans {
			spans[i] = testSpan(string(rune('a'+(g+i)%3)) + strconv.Itoa(g*perGoroutine+i))
			want = append(want, string(wantLine(src, byLetter(spans[i]), spans[i])))
		}
		wg.Go(func() {
			for _, sd := range spans {
				e.ExportSpan(sd)
			}
		})
	}
	wg.Wait()
	got := make([]string, len(w.writes))
	for i, b := range w.writes {
		got[i] = string(b)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%d writes differ from the %d lines expected", len(got), len(want))
	}
}
