package queue

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	netstats "knative.dev/networking/pkg/http/stats"
)

// queueRecorder is a ResponseWriter that records what ProxyHandler tells a
// QueueObserver.
type queueRecorder struct {
	http.ResponseWriter
	calls    []string
	wait     time.Duration
	admitted bool
	upstream time.Duration
}

func (q *queueRecorder) QueueDone(wait time.Duration, admitted bool) {
	q.calls = append(q.calls, "queue")
	q.wait, q.admitted = wait, admitted
}

func (q *queueRecorder) UpstreamDone(d time.Duration) {
	q.calls = append(q.calls, "upstream")
	q.upstream = d
}

// outerWriter stands for the layers between the observer and the queue
// layer (the timeout writer): it unwraps to the observer.
type outerWriter struct{ http.ResponseWriter }

func (o *outerWriter) Unwrap() http.ResponseWriter { return o.ResponseWriter }

func TestProxyHandlerQueueObserver(t *testing.T) {
	cases := []struct {
		name         string
		observe      bool
		cc           int  // 0: no breaker
		queueFull    bool // the one slot and the one queue place taken
		probe        bool
		wantCalls    []string
		wantAdmitted bool
		wantWait     time.Duration
		wantUpstream time.Duration
	}{
		{name: "no breaker", observe: true, wantCalls: []string{"queue", "upstream"}, wantAdmitted: true, wantWait: 0, wantUpstream: 5 * time.Millisecond}, // no queue: no wait, no extra clock reading
		{name: "admitted", observe: true, cc: 1, wantCalls: []string{"queue", "upstream"}, wantAdmitted: true, wantWait: time.Millisecond, wantUpstream: 5 * time.Millisecond},
		{name: "queue full", observe: true, cc: 1, queueFull: true, wantCalls: []string{"queue"}, wantAdmitted: false, wantWait: time.Millisecond},
		{name: "kubelet probe", observe: true, cc: 1, probe: true},
		{name: "not observing", observe: false, cc: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var breaker *Breaker
			if tc.cc > 0 {
				breaker = NewBreaker(BreakerParams{QueueDepth: 1, MaxConcurrency: tc.cc, InitialCapacity: tc.cc})
			}
			if tc.queueFull {
				fillBreaker(t, breaker)
			}
			// A clock that moves 1 ms per reading, and 5 ms in the user
			// container.
			clock := time.Unix(1000, 0)
			now := func() time.Time { clock = clock.Add(time.Millisecond); return clock }
			next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { clock = clock.Add(4 * time.Millisecond) })
			var opts []ProxyOption
			if tc.observe {
				opts = append(opts, ObserveQueue())
			}
			h := NewProxyHandler(breaker, netstats.NewRequestStats(time.Now()), SpanNames{}, next, opts...).(*proxyHandler)
			h.now = now

			rec := &queueRecorder{ResponseWriter: httptest.NewRecorder()}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.probe {
				req.Header.Set("User-Agent", "kube-probe/1.31")
			}
			h.ServeHTTP(&outerWriter{rec}, req)

			if len(rec.calls) != len(tc.wantCalls) || (len(rec.calls) > 0 && (rec.calls[0] != tc.wantCalls[0] || rec.calls[len(rec.calls)-1] != tc.wantCalls[len(tc.wantCalls)-1])) {
				t.Fatalf("calls %v, want %v", rec.calls, tc.wantCalls)
			}
			if len(tc.wantCalls) == 0 {
				return
			}
			if rec.admitted != tc.wantAdmitted || rec.wait != tc.wantWait || rec.upstream != tc.wantUpstream {
				t.Errorf("admitted %v after %v, upstream %v; want %v after %v, upstream %v",
					rec.admitted, rec.wait, rec.upstream, tc.wantAdmitted, tc.wantWait, tc.wantUpstream)
			}
		})
	}
}
