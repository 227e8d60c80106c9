package spanexport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"sync"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	"go.opencensus.io/trace"
	"go.uber.org/goleak"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait of these tests in wall time. It only turns a
// hang into a failure: no test waits for it to pass.
const guard = 10 * time.Second

var testResource = []metricdata.Attr{
	metricdata.String("service.name", "hello"),
	metricdata.String("k8s.pod.name", "hello-00001-deployment-x2x9z"),
	metricdata.Int("pid", 7),
}

// testScopes are named "a", "b", "c": byLetter maps a span to the scope
// its name starts with.
var testScopes = []Scope{
	{Name: "a", Version: "1.0.0", SchemaURL: "https://opentelemetry.io/schemas/1.26.0"},
	{Name: "b", Version: "2.0.0"},
	{Name: "c"},
}

func byLetter(sd *trace.SpanData) int { return int(sd.Name[0]) - 'a' }

// fakeClock never advances unless a test steps it: the schedule delay
// never fires, so batches are exported when full or at Shutdown.
func fakeClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(time.Unix(1700000000, 0))
}

// testSpan is a sampled server span named name, with IDs derived from it.
func testSpan(name string) *trace.SpanData {
	h := fnv.New64a()
	h.Write([]byte(name))
	id := h.Sum64()
	sd := &trace.SpanData{
		Name:      name,
		SpanKind:  trace.SpanKindServer,
		StartTime: time.Date(2025, 1, 17, 12, 0, 0, 0, time.UTC),
		EndTime:   time.Date(2025, 1, 17, 12, 0, 0, 1500000, time.UTC),
		Attributes: map[string]any{
			"http.request.method":       "GET",
			"url.path":                  "/" + name,
			"http.response.status_code": int64(200),
		},
	}
	sd.TraceOptions = 1
	binary.BigEndian.PutUint64(sd.TraceID[:8], id)
	binary.BigEndian.PutUint64(sd.TraceID[8:], ^id)
	binary.BigEndian.PutUint64(sd.SpanID[:], id|1)
	return sd
}

func testSpans(names ...string) []*trace.SpanData {
	out := make([]*trace.SpanData, len(names))
	for i, n := range names {
		out[i] = testSpan(n)
	}
	return out
}

// fakeClient is a Client under the test's control. Each Export hands a
// copy of its body to the test through bodies, then waits for release to
// be closed; both steps give up when ctx ends.
type fakeClient struct {
	bodies  chan []byte
	release chan struct{}
	err     error // returned by a released Export

	mu     sync.Mutex
	closed int
	first  []*byte // the address of each body's first byte
}

// newFakeClient makes a fakeClient whose bodies channel holds queued
// bodies; when blocking, exports wait for the test to close release.
func newFakeClient(queued int, blocking bool) *fakeClient {
	c := &fakeClient{bodies: make(chan []byte, queued), release: make(chan struct{})}
	if !blocking {
		close(c.release)
	}
	return c
}

func (c *fakeClient) Export(ctx context.Context, body []byte) error {
	c.mu.Lock()
	c.first = append(c.first, &body[0])
	c.mu.Unlock()
	select {
	case c.bodies <- bytes.Clone(body):
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.release:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *fakeClient) Close() {
	c.mu.Lock()
	c.closed++
	c.mu.Unlock()
}

func (c *fakeClient) closes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// next receives the next body.
func (c *fakeClient) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-c.bodies:
		return b
	case <-time.After(guard):
		t.Fatal("no export")
		return nil
	}
}

// errorLog collects the errors an exporter reports.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) report(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// shutdown calls Shutdown with a guard and expects it to succeed.
func shutdown(t *testing.T, e *OTLP) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal("Shutdown:", err)
	}
}

// writeLog is an io.Writer that records each Write call.
type writeLog struct {
	mu     sync.Mutex
	writes [][]byte
	err    error
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

var errRefused = errors.New("refused")
