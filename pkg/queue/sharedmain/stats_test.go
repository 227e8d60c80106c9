package sharedmain

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// stat is an autoscaler Stat (Knative's stat.proto) as read off the wire.
type stat struct {
	podName                    string
	avgConcurrency, avgProxied float64
	requestCount, proxiedCount float64
	uptime                     float64
	present                    map[protowire.Number]bool
}

// decodeStat reads every field of b as Knative's autoscaler would, and fails
// on anything it would not expect: an unknown field (timestamp, 7, is never
// set), a field of the wrong wire type, a repeated field, trailing bytes.
func decodeStat(t *testing.T, b []byte) stat {
	t.Helper()
	s := stat{present: map[protowire.Number]bool{}}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if s.present[num] {
			t.Errorf("field %d appears twice", num)
		}
		s.present[num] = true
		switch num {
		case 1:
			if typ != protowire.BytesType {
				t.Fatalf("pod_name has wire type %d", typ)
			}
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				t.Fatalf("pod_name: %v", protowire.ParseError(n))
			}
			s.podName, b = v, b[n:]
		case 2, 3, 4, 5, 6:
			if typ != protowire.Fixed64Type {
				t.Fatalf("field %d has wire type %d, want a double", num, typ)
			}
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				t.Fatalf("field %d: %v", num, protowire.ParseError(n))
			}
			f := math.Float64frombits(v)
			switch num {
			case 2:
				s.avgConcurrency = f
			case 3:
				s.avgProxied = f
			case 4:
				s.requestCount = f
			case 5:
				s.proxiedCount = f
			case 6:
				s.uptime = f
			}
			b = b[n:]
		default:
			t.Fatalf("unexpected field %d (wire type %d)", num, typ)
		}
	}
	return s
}

// scrapeStat fetches and decodes the Stat on the autoscaler port, as the
// autoscaler asks for it.
func (q *qp) scrapeStat(t *testing.T) stat {
	t.Helper()
	r := get(t, q.url(serverMetrics, "/metrics"), map[string]string{"Accept": "application/protobuf"})
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/protobuf" {
		t.Fatalf("GET :9090/metrics: %d, Content-Type %q", r.code, r.header.Get("Content-Type"))
	}
	return decodeStat(t, []byte(r.body))
}

// reportAt sets the fake clock to at, which fires the reporting ticker, and
// waits until the Stat of that report is served (process_uptime tells).
func (q *qp) reportAt(t *testing.T, start, at time.Time) stat {
	t.Helper()
	q.clock.SetTime(at)
	want := at.Sub(start).Seconds()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := q.scrapeStat(t)
		if s.uptime == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report at uptime %vs; last Stat %+v", want, s)
		}
		time.Sleep(time.Millisecond) // the reporter runs on its own goroutine
	}
}

// TestAutoscalerStats holds requests open at the user container across two
// reporting periods and checks, field by field, the Stat the autoscaler
// scrapes from :9090 (CONTRACT.md §5.1): concurrency counts from proxy
// handler entry, activator-proxied requests are a subset, probes do not
// count.
//
// The proxy handler stamps its events with the real clock and the reporter
// reads the fake one, which starts at the real time of startQP. So every
// report is placed after all events it must see: the first at or after
// both the real time all requests were in and the first tick, the second a
// period later. In the second window the N requests were in flight
// throughout, so its average is exactly N.
func TestAutoscalerStats(t *testing.T) {
	tests := []struct {
		name            string
		cc              int
		direct, proxied int
	}{
		{"10 direct, unlimited concurrency", 0, 10, 0},
		{"6 direct, 4 through the activator", 0, 6, 4},
		{"3 direct, 7 through the activator, breaker with room", 12, 3, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.direct + tc.proxied
			release := make(chan struct{})
			var releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			entered := make(chan struct{}, n)
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/hold" {
					entered <- struct{}{}
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}
				io.WriteString(w, "ok")
			}))
			t.Cleanup(app.Close)
			defer unblock() // on failure too; defers run before cleanups such as app.Close
			q := startQP(t, app, map[string]string{"CONTAINER_CONCURRENCY": strconv.Itoa(tc.cc)})
			start := q.clock.Now()

			if s := q.scrapeStat(t); s.podName != baseEnv()["SERVING_POD"] || len(s.present) != 1 {
				t.Fatalf("Stat before the first report = %+v, want only pod_name", s)
			}

			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				header := map[string]string{}
				if i < tc.proxied {
					header["K-Proxy-Request"] = "activator"
				}
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodGet, q.url(serverMain, "/hold"), nil)
					for k, v := range header {
						req.Header.Set(k, v)
					}
					resp, err := bareClient.Do(req)
					if err != nil {
						t.Errorf("held request: %v", err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("held request: %d", resp.StatusCode)
					}
				})
			}
			for i := 0; i < n; i++ {
				select {
				case <-entered:
				case <-time.After(10 * time.Second):
					t.Fatalf("only %d of %d requests reached the app", i, n)
				}
			}
			allIn := time.Now() // real time: every request's entry event is at or before it

			t1 := start.Add(reportingPeriod)
			if allIn.After(t1) {
				t1 = allIn
			}
			s1 := q.reportAt(t, start, t1)
			if s1.podName != baseEnv()["SERVING_POD"] || s1.requestCount != float64(n) || s1.proxiedCount != float64(tc.proxied) {
				t.Errorf("first report: pod %q, request_count %v, proxied_request_count %v; want %q, %d, %d",
					s1.podName, s1.requestCount, s1.proxiedCount, baseEnv()["SERVING_POD"], n, tc.proxied)
			}
			// In flight for part of the window: (0, N], the proxied part a subset.
			if s1.avgConcurrency <= 0 || s1.avgConcurrency > float64(n)+1e-9 || s1.avgProxied > s1.avgConcurrency ||
				(tc.proxied > 0) != (s1.avgProxied > 0) {
				t.Errorf("first report: average concurrency %v, proxied %v; want in (0, %d], proxied a positive subset iff any", s1.avgConcurrency, s1.avgProxied, n)
			}

			// Probes between the reports: kubelet ones pass the proxy handler
			// without stats, the others are answered by the drainer.
			for _, h := range []map[string]string{
				{"K-Kubelet-Probe": "queue"},
				{"User-Agent": "kube-probe/1.31"},
				{"User-Agent": "kube-probe/1.31", "K-Network-Probe": "queue"},
				{"User-Agent": "Knative-Activator-Probe", "K-Network-Probe": "queue", "K-Proxy-Request": "activator"},
				{"K-Network-Probe": "probe", "K-Network-Hash": "h"},
			} {
				req, _ := http.NewRequest(http.MethodGet, q.url(serverMain, "/healthz"), nil)
				for k, v := range h {
					req.Header.Set(k, v)
				}
				// The timeout only turns a probe stuck behind the held requests
				// (a broken kubelet bypass with a full breaker) into a failure.
				resp, err := (&http.Client{Transport: bareClient.Transport, Timeout: 10 * time.Second}).Do(req)
				if err != nil {
					t.Fatalf("probe %v: %v", h, err)
				}
				resp.Body.Close()
			}

			s2 := q.reportAt(t, start, t1.Add(reportingPeriod))
			const eps = 1e-9
			if math.Abs(s2.avgConcurrency-float64(n)) > eps || math.Abs(s2.avgProxied-float64(tc.proxied)) > eps {
				t.Errorf("second report: average concurrency %v, proxied %v; want %d, %d", s2.avgConcurrency, s2.avgProxied, n, tc.proxied)
			}
			if s2.present[4] || s2.present[5] {
				t.Errorf("second report: request_count %v, proxied %v; want none (absent): no arrivals, probes excluded", s2.requestCount, s2.proxiedCount)
			}
			if s2.present[7] {
				t.Error("timestamp (field 7) is set; Knative never sets it")
			}
			wantFields := map[protowire.Number]bool{1: true, 2: true, 6: true}
			if tc.proxied > 0 {
				wantFields[3] = true
			}
			for f := range s2.present {
				if !wantFields[f] {
					t.Errorf("second report has field %d", f)
				}
			}

			unblock()
			wg.Wait()
		})
	}
}
