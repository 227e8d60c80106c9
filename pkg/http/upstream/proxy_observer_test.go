package upstream_test

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/http/upstream"
)

// TestProxyTakes checks which request bodies the lean path takes, by
// MaxBody: known lengths up to the limit, never an unknown one unless the
// limit is negative.
func TestProxyTakes(t *testing.T) {
	const def = upstream.DefaultMaxBody
	tests := []struct {
		maxBody, length int64
		want            bool
	}{
		{0, 0, true},
		{0, def, true},
		{0, def + 1, false},
		{0, -1, false},
		{10, 10, true},
		{10, 11, false},
		{10, -1, false},
		{-1, -1, true},
		{-1, 1 << 30, true},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("POST", "/", strings.NewReader("x"))
		r.ContentLength = tc.length
		if tc.length == 0 {
			r.Body = http.NoBody
		}
		if tc.length < 0 {
			r.TransferEncoding = []string{"chunked"}
		}
		p := &upstream.Proxy{MaxBody: tc.maxBody}
		if got := p.Takes(r); got != tc.want {
			t.Errorf("MaxBody %d, ContentLength %d: Takes = %v, want %v", tc.maxBody, tc.length, got, tc.want)
		}
	}
	// The body limit never admits what Eligible refuses.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Upgrade", "websocket")
	if (&upstream.Proxy{MaxBody: -1}).Takes(r) {
		t.Error("Takes an Upgrade request")
	}
}

// pxObservation is one Done call.
type pxObservation struct {
	start    int64
	code     int
	reqBytes int64
	err      error
}

// pxObserver records the calls; it may be called from server goroutines.
type pxObserver struct {
	mu     sync.Mutex
	starts int64
	done   []pxObservation
}

func (o *pxObserver) Start() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.starts++
	return 100 + o.starts
}

func (o *pxObserver) Done(r *http.Request, start int64, resp *upstream.Response, reqBytes int64, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ob := pxObservation{start: start, reqBytes: reqBytes, err: err}
	if resp != nil {
		ob.code = resp.StatusCode
	}
	o.done = append(o.done, ob)
}

// TestProxyObserver checks that each exchange is observed once: started
// before it is sent and done with the response head or the final error
// (TestProxyStaleConnection: a retried request is one exchange); a request the lean path does not take
// is not observed (the Fallback's transport observes it).
func TestProxyObserver(t *testing.T) {
	pxVerifyNone(t)
	addr := pxRawBackend(t, nil, pxFixed("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	log.SetOutput(io.Discard)
	t.Cleanup(func() { log.SetOutput(nil) })

	tests := []struct {
		name   string
		addr   string
		req    func() *http.Request
		want   []pxObservation
		errIs  error
		starts int64
	}{{
		name:   "response",
		addr:   addr,
		req:    func() *http.Request { return httptest.NewRequest("POST", "/", strings.NewReader("abc")) },
		want:   []pxObservation{{start: 101, code: 201, reqBytes: 3}},
		starts: 1,
	}, {
		name:   "dial error",
		addr:   closed,
		req:    func() *http.Request { return httptest.NewRequest("GET", "/", nil) },
		want:   []pxObservation{{start: 101}},
		errIs:  syscall.ECONNREFUSED,
		starts: 1,
	}, {
		name: "fallback",
		addr: addr,
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs := &pxObserver{}
			p := &upstream.Proxy{Pool: &upstream.Pool{Addr: tc.addr}, Head: upstream.RequestHead{Target: tc.addr},
				Fallback: http.NotFoundHandler(), Observer: obs}
			t.Cleanup(p.Pool.CloseIdle)
			p.ServeHTTP(httptest.NewRecorder(), tc.req())
			if obs.starts != tc.starts || len(obs.done) != len(tc.want) {
				t.Fatalf("starts %d, done %+v; want %d, %+v", obs.starts, obs.done, tc.starts, tc.want)
			}
			for i, got := range obs.done {
				want := tc.want[i]
				if got.start != want.start || got.code != want.code || got.reqBytes != want.reqBytes {
					t.Errorf("done[%d] = %+v, want %+v", i, got, want)
				}
				if (tc.errIs == nil) != (got.err == nil) || (tc.errIs != nil && !errors.Is(got.err, tc.errIs)) {
					t.Errorf("done[%d].err = %v, want %v", i, got.err, tc.errIs)
				}
			}
		})
	}
}
