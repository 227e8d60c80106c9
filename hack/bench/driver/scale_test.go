package main

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A /proc/PID/status of a Go proxy, abridged.
const procStatus = `Name:	queue-proxy
Umask:	0022
State:	S (sleeping)
Tgid:	4242
VmPeak:	 1253472 kB
VmSize:	 1253472 kB
VmHWM:	   13020 kB
VmRSS:	   12380 kB
RssAnon:	    2764 kB
RssFile:	    9616 kB
RssShmem:	       0 kB
VmData:	   35916 kB
Threads:	6
voluntary_ctxt_switches:	150
`

func TestParseStatusRSSAnon(t *testing.T) {
	m, err := parseStatusRSSAnon(procStatus)
	if err != nil {
		t.Fatal(err)
	}
	if want := (mem{rss: 12380 << 10, anon: 2764 << 10}); m != want {
		t.Errorf("parseStatusRSSAnon = %+v, want %+v", m, want)
	}
	for name, status := range map[string]string{
		"no RssAnon":     strings.Replace(procStatus, "RssAnon:", "RssAnonX:", 1),
		"no VmRSS":       strings.Replace(procStatus, "VmRSS:", "VmRSSX:", 1),
		"not a number":   strings.Replace(procStatus, "2764 kB", "27x4 kB", 1),
		"not kB":         strings.Replace(procStatus, "12380 kB", "12380 MB", 1),
		"negative":       strings.Replace(procStatus, "2764 kB", "-2764 kB", 1),
		"missing a unit": strings.Replace(procStatus, "12380 kB", "12380", 1),
		"empty":          "",
	} {
		if m, err := parseStatusRSSAnon(status); err == nil {
			t.Errorf("%s: parseStatusRSSAnon = %+v, want an error", name, m)
		}
	}
}

func TestReadMemSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/PID/status is Linux's")
	}
	m, err := readMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.anon <= 0 || m.rss < m.anon {
		t.Errorf("readMem(self) = %+v: want 0 < RssAnon ≤ VmRSS", m)
	}
}

func TestPerConnKiB(t *testing.T) {
	base := mem{rss: 10 << 20, anon: 2 << 20}
	for _, tc := range []struct {
		at              memPoint
		wantRSS, wantAn float64
	}{
		{memPoint{1000, mem{rss: base.rss + 20000<<10, anon: base.anon + 15000<<10}}, 20, 15},
		{memPoint{10, mem{rss: base.rss + 5<<10, anon: base.anon}}, 0.5, 0},
		{memPoint{4, mem{rss: base.rss - 8<<10, anon: base.anon - 4<<10}}, -2, -1}, // returned memory
	} {
		rss, anon := perConnKiB(base, tc.at)
		if rss != tc.wantRSS || anon != tc.wantAn {
			t.Errorf("perConnKiB(%+v, %+v) = %v, %v; want %v, %v", base, tc.at, rss, anon, tc.wantRSS, tc.wantAn)
		}
	}
	if rss, anon := perConnKiB(base, memPoint{0, base}); !math.IsNaN(rss) || !math.IsNaN(anon) {
		t.Errorf("perConnKiB with n=0 = %v, %v; want NaN, NaN", rss, anon)
	}
}

func TestIntListFlag(t *testing.T) {
	var l intList
	if err := l.Set("100, 1000,10000"); err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "100,1000,10000" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []string{"", "0", "-5", "x", "100,100", "1000,100", "10,"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted, got %v", bad, l)
		}
	}
}

func TestScaleOptionsCheck(t *testing.T) {
	good := scaleOptions{backendBin: "b", bareBin: "p", conns: intList{10}, websockets: intList{10, 100},
		echoConns: 100, h2cDuration: time.Second, streamBytes: 1}
	if err := good.check(); err != nil {
		t.Fatalf("check(good) = %v", err)
	}
	for name, tweak := range map[string]func(*scaleOptions){
		"no backend":               func(o *scaleOptions) { o.backendBin = "" },
		"no conns":                 func(o *scaleOptions) { o.conns = nil },
		"echo above the websocket": func(o *scaleOptions) { o.echoConns = 101 },
		"no echo":                  func(o *scaleOptions) { o.echoConns = 0 },
		"short h2c":                func(o *scaleOptions) { o.h2cDuration = 500 * time.Millisecond },
		"no bytes":                 func(o *scaleOptions) { o.streamBytes = 0 },
	} {
		o := good
		tweak(&o)
		if err := o.check(); err == nil {
			t.Errorf("%s: check accepted it", name)
		}
	}
}

const h2loadOutput = `starting benchmark...
spawning thread #0: 1 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 2.01s, 32162.50 req/s, 753.88KB/s
requests: 64325 total, 64425 started, 64325 done, 64325 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 64400 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 1.47MB (1543951) total, 251.36KB (257390) headers (space savings 95.79%), 125.63KB (128650) data
                     min         max         mean         sd        +/- sd
time for request:      212us     15.94ms      3.06ms      1.56ms    83.08%
req/s           :   32078.43    32078.43    32078.43        0.00   100.00%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := h2loadResult{protocol: "h2c", rps: 32162.50, done: 64325, succeeded: 64325, status2xx: 64400}
	if r != want {
		t.Errorf("parseH2load = %+v, want %+v", r, want)
	}
	if err := r.check(); err != nil {
		t.Errorf("check of a clean run: %v", err)
	}

	for name, out := range map[string]string{
		"no summary":        "starting benchmark...\n",
		"bad rps":           strings.Replace(h2loadOutput, "32162.50 req/s", "fast req/s", 1),
		"bad count":         strings.Replace(h2loadOutput, "0 failed", "x failed", 1),
		"count missing":     strings.Replace(h2loadOutput, ", 0 timeout", "", 1),
		"no status codes":   strings.Replace(h2loadOutput, "status codes:", "statuses:", 1),
		"malformed finish":  strings.Replace(h2loadOutput, "finished in 2.01s, ", "finished in 2.01s ", 1),
		"status count miss": strings.Replace(h2loadOutput, ", 0 5xx", "", 1),
	} {
		if r, err := parseH2load(out); err == nil {
			t.Errorf("%s: parseH2load = %+v, want an error", name, r)
		}
	}

	// Runs that parse but must not count.
	for name, out := range map[string]string{
		"HTTP/1.1":      strings.Replace(h2loadOutput, "Application protocol: h2c", "Application protocol: http/1.1", 1),
		"failures":      strings.Replace(h2loadOutput, "0 failed", "3 failed", 1),
		"errors":        strings.Replace(h2loadOutput, "0 errored", "1 errored", 1),
		"timeouts":      strings.Replace(h2loadOutput, "0 timeout", "2 timeout", 1),
		"5xx":           strings.Replace(h2loadOutput, "0 5xx", "7 5xx", 1),
		"too few 2xx":   strings.Replace(h2loadOutput, "64400 2xx", "64000 2xx", 1),
		"nothing done":  strings.NewReplacer("64325 succeeded", "0 succeeded", "64400 2xx", "0 2xx").Replace(h2loadOutput),
		"refused conns": "finished in 1.00s, 0.00 req/s, 0B/s\nrequests: 0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout\nstatus codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx\n",
	} {
		r, err := parseH2load(out)
		if err != nil {
			t.Errorf("%s: parseH2load: %v", name, err)
			continue
		}
		if err := r.check(); err == nil {
			t.Errorf("%s: check accepted %+v", name, r)
		}
	}
}

func TestResultRates(t *testing.T) {
	s := streamResult{bytes: 1 << 30, seconds: 0.5, cpu: 0.25}
	if got, want := s.mbps(), float64(1<<30)/1e6/0.5; got != want {
		t.Errorf("mbps = %v, want %v", got, want)
	}
	if got := s.cpuPerGiB(); got != 0.25 {
		t.Errorf("cpuPerGiB = %v, want 0.25", got)
	}
	if got := (streamResult{bytes: 1 << 29, seconds: 1, cpu: 0.25}).cpuPerGiB(); got != 0.5 {
		t.Errorf("cpuPerGiB of half a GiB = %v, want 0.5", got)
	}
	e := echoResult{conns: 10, messages: 20000, seconds: 2, cpu: 1}
	if e.rate() != 10000 || e.cpuPer10k() != 0.5 {
		t.Errorf("echo rate, cpu = %v, %v; want 10000, 0.5", e.rate(), e.cpuPer10k())
	}
	h := h2cResult{h2loadResult: h2loadResult{succeeded: 40000}, cpu: 2}
	if h.cpuPer10k() != 0.5 {
		t.Errorf("h2c cpuPer10k = %v, want 0.5", h.cpuPer10k())
	}
	for name, v := range map[string]float64{
		"mbps of nothing": streamResult{}.mbps(), "echo rate of nothing": echoResult{}.rate(),
		"echo cpu of nothing": echoResult{cpu: 1}.cpuPer10k(), "h2c cpu of nothing": h2cResult{cpu: 1}.cpuPer10k(),
	} {
		if !math.IsNaN(v) {
			t.Errorf("%s = %v, want NaN", name, v)
		}
	}
}

func TestPatternReader(t *testing.T) {
	for _, n := range []int64{0, 1, 16, streamBuf - 1, streamBuf, 3*streamBuf + 7} {
		b, err := io.ReadAll(&patternReader{left: n})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != n {
			t.Errorf("patternReader(%d) gave %d bytes", n, len(b))
		}
		if n >= 16 && string(b[:16]) != "0123456789abcdef" {
			t.Errorf("patternReader(%d) starts %q", n, b[:16])
		}
	}
}

func TestOpenMany(t *testing.T) {
	var calls atomic.Int64
	got, err := openMany(context.Background(), 100, func() (int64, error) { return calls.Add(1), nil })
	if err != nil || len(got) != 100 || calls.Load() != 100 {
		t.Errorf("openMany(100) = %d values, %v, after %d calls; want 100, nil, 100", len(got), err, calls.Load())
	}

	// A failure stops the opening; what was opened is returned.
	boom := errors.New("boom")
	calls.Store(0)
	got, err = openMany(context.Background(), 1000, func() (int64, error) {
		if n := calls.Add(1); n%50 == 0 {
			return 0, boom
		}
		return 1, nil
	})
	if !errors.Is(err, boom) || len(got) == 0 || calls.Load() >= 1000 {
		t.Errorf("openMany with failures = %d values, %v, after %d calls; want some, boom, < 1000", len(got), err, calls.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := openMany(ctx, 1000, func() (int, error) { return 1, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("openMany after cancel: %v, want context.Canceled", err)
	}
}

func TestOneRequestConn(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok") //nolint:errcheck // test server
	}))
	defer ts.Close()
	port := ts.Listener.Addr().(*net.TCPAddr).Port

	nc, err := oneRequestConn(port)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The connection is still usable: a second request on it succeeds.
	if err := oneRequest(nc, port); err != nil {
		t.Errorf("second request on the kept connection: %v", err)
	}

	// A server that answers 404 or closes the connection fails it.
	ts404 := httptest.NewServer(http.NotFoundHandler())
	defer ts404.Close()
	if nc, err := oneRequestConn(ts404.Listener.Addr().(*net.TCPAddr).Port); err == nil {
		nc.Close()
		t.Error("oneRequestConn accepted a 404")
	}
	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
	}))
	defer closing.Close()
	if nc, err := oneRequestConn(closing.Listener.Addr().(*net.TCPAddr).Port); err == nil {
		nc.Close()
		t.Error("oneRequestConn accepted a connection the server closes")
	}
}

func TestEchoFor(t *testing.T) {
	up := websocket.Upgrader{}
	var echoed atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			echoed.Add(1) // before the echo: the client may return as soon as it has it
			if c.WriteMessage(kind, msg) != nil {
				return
			}
		}
	}))
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	var wss []*websocket.Conn
	for range 3 {
		ws, err := openEcho(url)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		wss = append(wss, ws)
	}
	n, err := echoFor(wss, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The server echoed 3 messages at opening, then n.
	if n <= 0 || echoed.Load() != n+3 {
		t.Errorf("echoFor = %d, server echoed %d; want > 0 and %d + 3", n, echoed.Load(), n)
	}

	// A server that answers something else is an error.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.ReadMessage()                                                  //nolint:errcheck // test server
		c.WriteMessage(websocket.TextMessage, []byte("not the message")) //nolint:errcheck // test server
	}))
	defer bad.Close()
	if ws, err := openEcho("ws" + strings.TrimPrefix(bad.URL, "http")); err == nil {
		ws.Close()
		t.Error("openEcho accepted a wrong echo")
	}
}

// goodResults are scale results meeting every target of issue 15, for
// the bare proxy and queue-proxy.
func goodResults() *scaleResults {
	r := &scaleResults{
		o:       scaleOptions{proxyCPU: "0", loadCPU: "1", settle: 2 * time.Second, echoConns: 100, echoDuration: 5 * time.Second, h2cDuration: 5 * time.Second, streamBytes: 1 << 30},
		targets: []string{bareName, scaleQPName},
	}
	for _, tg := range r.targets {
		base := mem{rss: 8 << 20, anon: 1 << 20} // queue-proxy: 1 MiB of RssAnon
		r.setIdle(tg, base)
		r.setWSBase(tg, base)
		perConn := int64(20 << 10) // bare: 20 KiB per connection
		if tg == scaleQPName {
			perConn = 21 << 10 // queue-proxy: 21 KiB, within bare + 2 KiB
		}
		r.addConns(tg, memPoint{1000, mem{rss: base.rss + 1000*perConn, anon: base.anon + 1000*(perConn-1024)}})
		r.addConns(tg, memPoint{10000, mem{rss: base.rss + 10000*perConn, anon: base.anon + 10000*(perConn-1024)}})
		r.addWS(tg, memPoint{100, mem{rss: base.rss + 100*(60<<10), anon: base.anon + 100*(50<<10)}})
		r.setEcho(tg, echoResult{conns: 100, messages: 100000, seconds: 5, cpu: 2})
		for _, l := range h2cLoads {
			r.setH2C(l, tg, h2cResult{h2loadResult: h2loadResult{rps: 10000, succeeded: 50000}, cpu: 4}) // 0.8 s / 10k
		}
		for _, dir := range []string{dirUpload, dirDownload} {
			r.setStream(dir, tg, streamResult{bytes: 1 << 30, seconds: 1, cpu: 0.5})
		}
	}
	return r
}

func TestScaleReport(t *testing.T) {
	text := goodResults().String()
	for _, want := range []string{
		"| bare proxy | 8.0 MiB | 1.0 MiB |",
		"| queue-proxy | 10000 | 213.1 MiB | 196.3 MiB | 21.0 KiB | 20.0 KiB |",
		"| bare proxy | 1000 | 27.5 MiB | 19.6 MiB | 20.0 KiB | 19.0 KiB |",
		"| queue-proxy | 100 | 13.9 MiB | 5.9 MiB | 60.0 KiB | 50.0 KiB |",
		"| queue-proxy | 20000 | 0.200 | 1.00× |",
		"| 1 conn × 100 streams | queue-proxy | 10000 | 0.800 | 1.00× |",
		"| 16 conns × 10 streams | bare proxy | 10000 | 0.800 |  |",
		"| download | queue-proxy | 1074 | 0.500 | 1.00× |",
		"1 GiB each way",
		"- met: idle RssAnon 1.0 MiB (target ≤ 2.0 MiB)",
		"- met: VmRSS per idle keep-alive connection (10000 open) 21.0 KiB, the bare proxy's 20.0 KiB (target ≤ bare + 2 KiB = 22.0 KiB)",
		"- met: streaming upload 1074 MB/s = 1.00× the bare proxy's 1074 MB/s (target ≥ 0.95×)",
		"- met: h2c CPU per request, 16 conns × 10 streams: 1.00× the bare h2c proxy's (target ≤ 1.1×)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "MISSED") || strings.Contains(text, "not measured") {
		t.Errorf("report of good results misses a target:\n%s", text)
	}
	if n := strings.Count(text, "\n- met: "); n != 6 {
		t.Errorf("%d met lines, want 6 (idle, connection, upload, download, 2 h2c loads)", n)
	}
}

// TestScaleTargets misses each of issue 15's targets alone.
func TestScaleTargets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tweak  func(r *scaleResults)
		missed string // the prefix of the one line that must not say met
	}{
		{"idle RssAnon", func(r *scaleResults) { r.setIdle(scaleQPName, mem{rss: 8 << 20, anon: 2<<20 + 4096}) },
			"MISSED: idle RssAnon 2.0 MiB"},
		{"connection", func(r *scaleResults) {
			p := r.conns[scaleQPName][1]
			p.m.rss += 10000 * 1100 // 22.07 KiB per connection: above 20 + 2
			r.conns[scaleQPName][1] = p
		}, "MISSED: VmRSS per idle keep-alive connection (10000 open) 22.1 KiB"},
		{"upload", func(r *scaleResults) {
			r.setStream(dirUpload, scaleQPName, streamResult{bytes: 1 << 30, seconds: 1.06, cpu: 0.5})
		}, "MISSED: streaming upload"},
		{"download", func(r *scaleResults) {
			r.setStream(dirDownload, scaleQPName, streamResult{bytes: 1 << 30, seconds: 1.06, cpu: 0.5})
		}, "MISSED: streaming download"},
		{"h2c", func(r *scaleResults) {
			r.setH2C(h2cLoads[0], scaleQPName, h2cResult{h2loadResult: h2loadResult{succeeded: 50000}, cpu: 4.5})
		}, "MISSED: h2c CPU per request, 1 conn × 100 streams: 1.12×"},
		{"h2c skipped", func(r *scaleResults) { r.h2cSkipped = "no h2load"; r.h2c = nil },
			"not measured: h2c CPU per request (no h2load)"},
		{"no streaming", func(r *scaleResults) { delete(r.stream[dirDownload], scaleQPName) },
			"not measured: streaming download"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := goodResults()
			tc.tweak(r)
			var notMet []string
			for _, l := range r.targetLines() {
				if !strings.HasPrefix(l, "met: ") {
					notMet = append(notMet, l)
				}
			}
			if len(notMet) != 1 || !strings.HasPrefix(notMet[0], tc.missed) {
				t.Errorf("lines not met: %q; want only one starting %q", notMet, tc.missed)
			}
			// The tables still render.
			if text := r.String(); !strings.Contains(text, "## Streaming") {
				t.Errorf("report lost its tables:\n%s", text)
			}
		})
	}
}
