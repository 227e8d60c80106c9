package otel

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Trace headers a call may bring.
const (
	propNone       = ""
	propW3C        = "traceparent"              // sampled
	propW3CNotSamp = "traceparent, not sampled" // flags 00
	propB3         = "X-B3-*"
)

// spanCall is one request through queue-proxy's main port whose spans a
// test checks.
type spanCall struct {
	name               string
	method, path, body string
	host               string            // Host header; "" = 127.0.0.1:<main port>
	userAgent          string            // "" = none
	header             map[string]string // added to the request
	propagation        string            // trace headers to send (prop*)
	want               int               // status code
	tag                string            // kn.route.tag (newest generation)
	clientAddr         string            // client.address; "" = the peer address
}

// sentCall is a spanCall as sent: the trace context it carried and what
// came back.
type sentCall struct {
	spanCall
	traceID    pcommon.TraceID // the incoming trace; zero without one
	parentSpan pcommon.SpanID  // the incoming span; zero without one
	sentHost   string          // the Host it was sent with
	localPort  int             // the client's port (the server's peer port)
	status     int
	respBody   string
	err        error
}

// urlPath is the path of c.path without its query.
func (c spanCall) urlPath() string {
	p, _, _ := strings.Cut(c.path, "?")
	return p
}

// newIDs returns a random trace id and span id.
func newIDs() (pcommon.TraceID, pcommon.SpanID) {
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	rand.Read(tid[:]) //nolint:errcheck // never fails
	rand.Read(sid[:]) //nolint:errcheck // never fails
	return tid, sid
}

// sendCall sends c through s with a fresh trace context if c asks for
// one. It is safe for concurrent use; transport errors are in err.
func (s *stack) sendCall(c spanCall) sentCall {
	return s.exchange(s.prepare(c))
}

// prepare fills in the Host and, if c asks for one, a fresh trace context.
func (s *stack) prepare(c spanCall) sentCall {
	sc := sentCall{spanCall: c, sentHost: c.host}
	if sc.sentHost == "" {
		sc.sentHost = s.hostPort()
	}
	if c.propagation != propNone {
		sc.traceID, sc.parentSpan = newIDs()
	}
	return sc
}

// exchange sends a prepared call and records what came back. It is safe
// for concurrent use; transport errors are in err.
func (s *stack) exchange(sc sentCall) sentCall {
	c := sc.spanCall
	req := s.request(c.method, c.path, strings.NewReader(c.body))
	req.Host = sc.sentHost
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.propagation != propNone {
		tid, sid := hex.EncodeToString(sc.traceID[:]), hex.EncodeToString(sc.parentSpan[:])
		switch c.propagation {
		case propW3C:
			req.Header.Set("traceparent", "00-"+tid+"-"+sid+"-01")
		case propW3CNotSamp:
			req.Header.Set("traceparent", "00-"+tid+"-"+sid+"-00")
		case propB3:
			req.Header.Set("X-B3-TraceId", tid)
			req.Header.Set("X-B3-SpanId", sid)
			req.Header.Set("X-B3-Sampled", "1")
		default:
			panic("unknown propagation " + c.propagation)
		}
	}
	var local atomic.Int64
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if a, ok := info.Conn.LocalAddr().(*net.TCPAddr); ok {
				local.Store(int64(a.Port))
			}
		},
	}))
	sc.status, sc.respBody, sc.err = s.do(req)
	sc.localPort = int(local.Load())
	return sc
}

// mustSend is sendCall that fails the test unless the call got its
// status; only for the test's goroutine.
func (s *stack) mustSend(t *testing.T, c spanCall) sentCall {
	t.Helper()
	sc := s.sendCall(c)
	if sc.err != nil {
		t.Fatalf("%s: %s %s: %v", c.name, c.method, c.path, sc.err)
	}
	if sc.status != c.want {
		t.Fatalf("%s: %s %s: status %d %q, want %d", c.name, c.method, c.path, sc.status, sc.respBody, c.want)
	}
	return sc
}

// probe sends a health probe the way the activator (ua
// Knative-Activator-Probe) or kubelet (kube-probe/1.30) does and returns
// the status.
func (s *stack) probe(t *testing.T, ua string) (int, string) {
	t.Helper()
	req := s.request(http.MethodGet, "/", nil)
	req.Header.Set("User-Agent", ua)
	req.Header.Set("K-Network-Probe", "queue")
	return s.mustDo(req)
}

// traceOf finds the spans of sc's trace: those with its trace id when it
// brought one, else those of the trace whose root isRoot picks (exactly
// one).
func traceOf(spans []recSpan, sc sentCall, isRoot func(recSpan) bool) ([]recSpan, string) {
	traces := byTrace(spans)
	if !sc.traceID.IsEmpty() {
		return traces[sc.traceID], ""
	}
	var roots []recSpan
	for _, s := range spans {
		if s.ParentSpanID().IsEmpty() && isRoot(s) {
			roots = append(roots, s)
		}
	}
	if len(roots) != 1 {
		return nil, fmt.Sprintf("%d root spans for %s, want 1", len(roots), sc.name)
	}
	return traces[roots[0].TraceID()], ""
}

// startStackEnv starts the user container and queue-proxy like startStack,
// with qpEnv(ports, "") changed by edit.
func startStackEnv(t *testing.T, edit func(harness.Ports, map[string]string)) *stack {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 32}
	t.Cleanup(tr.CloseIdleConnections)
	s := &stack{t: t, c: &http.Client{Transport: tr, Timeout: time.Minute}}
	s.app = harness.StartApp(t, bins.App, &s.ports.User, nil)
	s.qp = harness.StartQueueProxy(t, bins.QueueProxy, &s.ports, func(p harness.Ports) map[string]string {
		env := qpEnv(p, "")
		edit(p, env)
		return env
	})
	return s
}

// userURL is the user container's URL for path.
func (s *stack) userURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.ports.User) + path
}
