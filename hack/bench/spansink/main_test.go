package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpRequest is an ExportTraceServiceRequest with two resources holding
// 1+2 and 3 spans.
func otlpRequest(t *testing.T) []byte {
	t.Helper()
	spans := func(n int) []*tracepb.Span {
		var s []*tracepb.Span
		for range n {
			s = append(s, &tracepb.Span{Name: "GET", TraceId: make([]byte, 16), SpanId: make([]byte, 8)})
		}
		return s
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(1)}, {Spans: spans(2)}}},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(3)}}},
	}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(h http.Handler, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return w
}

// TestSink: each protocol gets its collector's answer, and posts, bytes and
// spans are counted.
func TestSink(t *testing.T) {
	s := &sink{}
	zipkin := `[{"traceId":"a","id":"1","name":"/"},{"traceId":"a","id":"2","tags":{"k":"\"traceId\""}}]`
	if w := post(s, zipkinPath, zipkin); w.Code != http.StatusAccepted || w.Body.Len() != 0 {
		t.Errorf("Zipkin post: %d %q, want 202 and no body", w.Code, w.Body)
	}

	otlp := otlpRequest(t)
	w := post(s, otlpPath, string(otlp))
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("OTLP post: %d %q %v, want 200, an empty protobuf body", w.Code, w.Body, w.Header())
	}
	var resp coltracepb.ExportTraceServiceResponse
	if err := proto.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Errorf("OTLP answer is no ExportTraceServiceResponse: %v", err)
	}

	if w := post(s, otlpPath, "\xff"); w.Code != http.StatusBadRequest {
		t.Errorf("malformed OTLP post: %d, want 400", w.Code)
	}
	if w := post(s, "/other", "x"); w.Code != http.StatusNotFound {
		t.Errorf("post elsewhere: %d, want 404", w.Code)
	}

	want := stats{Posts: 2, Bytes: int64(len(zipkin) + len(otlp) + 1), Spans: 2 + 6, Errors: 1}
	if got := s.stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	get := httptest.NewRecorder()
	s.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/", nil))
	var got stats
	if err := json.Unmarshal(get.Body.Bytes(), &got); err != nil || got != want {
		t.Errorf("GET = %d %q (%v), want %+v", get.Code, get.Body, err, want)
	}
}
