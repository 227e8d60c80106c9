// Command spansink is the whole-process benchmark's trace collector: it
// accepts queue-proxy's span exports, reads and discards them, and counts
// them, so that the benchmark measures what exporting costs queue-proxy and
// shows that the export really happened.
//
//   - POST /api/v2/spans (Zipkin v2 JSON): 202 Accepted, empty body.
//   - POST /v1/traces (OTLP/HTTP, http/protobuf): 200 with an empty
//     ExportTraceServiceResponse, that is a zero-length body of type
//     application/x-protobuf.
//   - GET, any path: the counts so far as JSON (stats); the driver polls it
//     until the sink is up and reads it for the report.
//
// Anything else is 404 and not counted. A body that cannot be read or
// parsed is 400 and counted in errors. Spans are counted cheaply (Zipkin:
// occurrences of "traceId"; OTLP: a walk over the protobuf wire format);
// bodies are assumed uncompressed, as the driver configures no compression.
//
// Usage: spansink -addr 127.0.0.1:PORT
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The export paths the sink answers.
const (
	zipkinPath = "/api/v2/spans"
	otlpPath   = "/v1/traces"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9411", "address to listen on")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: &sink{}, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// stats is what the sink has received; GET answers it as JSON.
type stats struct {
	Posts  int64 `json:"posts"`  // exports accepted
	Bytes  int64 `json:"bytes"`  // their body bytes
	Spans  int64 `json:"spans"`  // spans in them
	Errors int64 `json:"errors"` // exports answered 400
}

// sink is the HTTP handler; its zero value is ready.
type sink struct {
	posts, bytes, spans, errors atomic.Int64
	bufs                        sync.Pool // of *bytes.Buffer
}

func (s *sink) stats() stats {
	return stats{Posts: s.posts.Load(), Bytes: s.bytes.Load(), Spans: s.spans.Load(), Errors: s.errors.Load()}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.stats()) //nolint:errcheck // the client may be gone
		return
	}
	var count func([]byte) (int, error)
	switch {
	case r.Method != http.MethodPost:
	case r.URL.Path == zipkinPath:
		count = zipkinSpans
	case r.URL.Path == otlpPath:
		count = otlpSpans
	}
	if count == nil {
		http.NotFound(w, r)
		return
	}

	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() { buf.Reset(); s.bufs.Put(buf) }()
	n, err := buf.ReadFrom(r.Body)
	s.bytes.Add(n)
	var spans int
	if err == nil {
		spans, err = count(buf.Bytes())
	}
	if err != nil {
		s.errors.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.posts.Add(1)
	s.spans.Add(int64(spans))
	if r.URL.Path == otlpPath {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// zipkinSpans counts the spans of a Zipkin v2 JSON list: each has exactly
// one "traceId" key, and the quoted name cannot occur inside a JSON string.
func zipkinSpans(body []byte) (int, error) {
	return bytes.Count(body, []byte(`"traceId"`)), nil
}

// otlpSpans counts the spans of an ExportTraceServiceRequest: field 2
// (spans) of every ScopeSpans, field 2 of every ResourceSpans, field 1 of
// the request.
func otlpSpans(body []byte) (int, error) {
	n := 0
	err := eachMessage(body, 1, func(resourceSpans []byte) error {
		return eachMessage(resourceSpans, 2, func(scopeSpans []byte) error {
			return eachMessage(scopeSpans, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// eachMessage calls fn with the bytes of every length-delimited field num
// of the protobuf message msg, skipping the other fields.
func eachMessage(msg []byte, num protowire.Number, fn func([]byte) error) error {
	for len(msg) > 0 {
		field, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if field == num && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := fn(v); err != nil {
				return err
			}
			msg = msg[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(field, typ, msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
	}
	return nil
}
