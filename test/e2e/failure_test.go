package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUserContainerCrash: while the user container is down, requests get
// 502 with the dial error (CONTRACT.md §3.2, §3.12); once kubelet restarts
// it on the same port, traffic flows again without touching queue-proxy.
func TestUserContainerCrash(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackConfig{appEnv: map[string]string{"ENABLE_CRASH": "true"}})
	h2 := newH2CClient(t)

	for _, c := range []*http.Client{s.c, h2} {
		if r := mustFetch(t, c, get(s.url("/status?code=200"))); r.code != http.StatusOK {
			t.Fatalf("before the crash: %d %q", r.code, r.body)
		}
	}

	// The answer to /crash itself may or may not make it out.
	fetch(s.c, get(s.url("/crash"))) //nolint:errcheck // see above
	if code := s.app.WaitExit(t, 10*time.Second); code != 2 {
		t.Fatalf("the user container exited with status %d, want 2", code)
	}

	want := fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused\n", s.ports.User)
	for i := range 5 {
		r := mustFetch(t, s.c, get(s.url("/headers")))
		if r.code != http.StatusBadGateway || r.body != want {
			t.Errorf("request %d while down: %d %q, want 502 %q", i, r.code, r.body, want)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("502 Content-Type %q", ct)
		}
	}
	if r := mustFetch(t, h2, get(s.url("/headers"))); r.code != http.StatusBadGateway {
		t.Errorf("h2c request while down: %d %q, want 502", r.code, r.body)
	}
	// Readiness (a TCP probe on USER_PORT) fails while the app is down. The
	// container had been ready, so the answer comes after one attempt
	// instead of Knative's 10 s of polling.
	for _, ua := range []string{activatorUA, "kube-probe/1.31"} {
		if r := s.probe(ua, "queue"); r.code != http.StatusServiceUnavailable || r.body != "" {
			t.Errorf("%s probe while down: %d %q, want 503 and an empty body", ua, r.code, r.body)
		}
	}
	if s.qp.Exited() {
		t.Fatalf("queue-proxy exited (status %d) with its user container", s.qp.Code())
	}

	s.restartApp()
	for name, c := range map[string]*http.Client{"HTTP/1.1": s.c, "h2c": h2} {
		eventually(t, 10*time.Second, 50*time.Millisecond, name+" traffic recovers", func() (bool, string) {
			r, err := fetch(c, get(s.url("/status?code=200")))
			return err == nil && r.code == http.StatusOK, fmt.Sprint(r.code, " ", r.body, " ", err)
		})
	}
	if r := s.probe(activatorUA, "queue"); r.code != http.StatusOK || r.body != "queue" {
		t.Errorf("probe after recovery: %d %q", r.code, r.body)
	}
}

// TestOverload floods a CONTAINER_CONCURRENCY=2 revision: 2 requests run,
// 20 wait, everything beyond gets 503 "pending request queue full\n" at once
// (CONTRACT.md §3.4); nothing else fails, probes are unaffected, and
// queue-proxy's goroutines return to their baseline afterwards.
func TestOverload(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackConfig{qpEnv: map[string]string{
		"CONTAINER_CONCURRENCY": "2",
		"ENABLE_PROFILING":      "true",
	}})

	pc := newH1Client(t)
	goroutines := func() (int, error) {
		r, err := fetch(pc, get(s.pprofURL("/debug/pprof/goroutine?debug=1")))
		if err != nil {
			return 0, err
		}
		line, _, _ := strings.Cut(r.body, "\n")
		n, err := strconv.Atoi(strings.TrimPrefix(line, "goroutine profile: total "))
		if r.code != http.StatusOK || err != nil {
			return 0, fmt.Errorf("goroutine profile: %d %q", r.code, line)
		}
		return n, nil
	}

	// Warm up: two concurrent requests open both upstream connections the
	// idle pool keeps (CC), so they count in the baseline.
	fc := newH1Client(t)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { fetch(fc, get(s.url("/sleep?ms=100"))) }) //nolint:errcheck // warm-up only
	}
	wg.Wait()
	fc.Transport.(*http.Transport).CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)
	baseline := 1 << 30
	for range 3 {
		n, err := goroutines()
		if err != nil {
			t.Fatal(err)
		}
		baseline = min(baseline, n)
		time.Sleep(100 * time.Millisecond)
	}

	const (
		flood    = 60
		admitted = 2 + 20 // CC running + 10×CC queued
		sleep    = "400"
	)
	// Open the connections first, so that the flood arrives at once.
	for range flood {
		wg.Go(func() { fetch(fc, get(s.url("/status?code=200"))) }) //nolint:errcheck // warm-up only
	}
	wg.Wait()

	var (
		mu               sync.Mutex
		okN, fullN       int
		failures         []string
		fullHeaderChecks int
	)
	start := make(chan struct{})
	for range flood {
		wg.Go(func() {
			<-start
			r, err := fetch(fc, get(s.url("/sleep?ms="+sleep)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failures = append(failures, err.Error())
			case r.code == http.StatusOK && r.body == "slept "+sleep+" ms\n":
				okN++
			case r.code == http.StatusServiceUnavailable && r.body == "pending request queue full\n":
				fullN++
				if r.header.Get("Content-Type") == "text/plain; charset=utf-8" && r.header.Get("X-Content-Type-Options") == "nosniff" {
					fullHeaderChecks++
				}
			default:
				failures = append(failures, fmt.Sprintf("%d %q", r.code, r.body))
			}
		})
	}
	close(start)

	// Probes do not queue behind the breaker.
	time.Sleep(100 * time.Millisecond)
	if r := s.probe(activatorUA, "queue"); r.code != http.StatusOK || r.body != "queue" {
		t.Errorf("probe during the flood: %d %q, want 200 \"queue\"", r.code, r.body)
	}
	// The goroutine count does see the flood (one per client connection).
	during, err := goroutines()
	if err != nil {
		t.Error(err)
	} else if during < baseline+flood/2 {
		t.Errorf("%d goroutines during the flood, baseline %d: the profile does not reflect the load", during, baseline)
	}
	wg.Wait()

	for _, f := range failures {
		t.Errorf("request failed: %s", f)
	}
	t.Logf("flood of %d: %d served, %d rejected as queue full", flood, okN, fullN)
	if okN < admitted {
		t.Errorf("%d requests served, want at least %d (the first %d fit in the breaker)", okN, admitted, admitted)
	}
	if fullN == 0 {
		t.Errorf("no request was rejected with 503 \"pending request queue full\"")
	}
	if fullHeaderChecks != fullN {
		t.Errorf("%d of %d queue-full answers lack text/plain + nosniff", fullN-fullHeaderChecks, fullN)
	}
	if r := mustFetch(t, s.c, get(s.url("/status?code=200"))); r.code != http.StatusOK {
		t.Errorf("request after the flood: %d %q", r.code, r.body)
	}

	fc.Transport.(*http.Transport).CloseIdleConnections()
	s.c.Transport.(*http.Transport).CloseIdleConnections()
	const slack = 3
	var after int
	eventually(t, 15*time.Second, 100*time.Millisecond, "goroutines back to the baseline", func() (bool, string) {
		n, err := goroutines()
		if err != nil {
			return false, err.Error()
		}
		after = n
		return n <= baseline+slack, fmt.Sprintf("%d goroutines, baseline %d (+%d allowed)", n, baseline, slack)
	})
	t.Logf("goroutines: baseline %d, during the flood %d, after %d", baseline, during, after)
}
