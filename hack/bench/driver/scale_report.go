package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// The scale targets of issue 15. "2.0 MB" of RssAnon is read as MiB, as
// the other memory targets of the benchmark are.
const (
	maxIdleAnon        = 2 << 20 // queue-proxy's idle RssAnon, bytes
	maxConnOverBareKiB = 2.0     // VmRSS per idle keep-alive connection, over the bare proxy's
	minStreamRatio     = 0.95    // MB/s ÷ the bare proxy's, upload and download
	maxH2CCPURatio     = 1.1     // h2c CPU per request ÷ the bare h2c proxy's
)

// scaleResults is what a scale run measured, by target name.
type scaleResults struct {
	o          scaleOptions
	targets    []string              // in the order the tables list them; bareName first
	idle       map[string]mem        // fresh process, warmed up, idle
	conns      map[string][]memPoint // with -conns idle keep-alive connections
	wsBase     map[string]mem        // fresh process before its websockets
	ws         map[string][]memPoint // with -websockets idle websockets
	echo       map[string]echoResult
	h2c        map[h2cLoad]map[string]h2cResult
	h2cSkipped string                             // why there is no h2c section; "" when there is
	stream     map[string]map[string]streamResult // direction -> target
	elapsed    time.Duration
	loadavg    [2]string // /proc/loadavg before and after
}

func (r *scaleResults) setIdle(tg string, m mem) { r.idle = setKey(r.idle, tg, m) }
func (r *scaleResults) setWSBase(tg string, m mem) {
	r.wsBase = setKey(r.wsBase, tg, m)
}
func (r *scaleResults) addConns(tg string, p memPoint) {
	r.conns = setKey(r.conns, tg, append(r.conns[tg], p))
}
func (r *scaleResults) addWS(tg string, p memPoint) { r.ws = setKey(r.ws, tg, append(r.ws[tg], p)) }
func (r *scaleResults) setEcho(tg string, e echoResult) {
	r.echo = setKey(r.echo, tg, e)
}
func (r *scaleResults) setH2C(l h2cLoad, tg string, v h2cResult) {
	r.h2c = setKey(r.h2c, l, setKey(r.h2c[l], tg, v))
}
func (r *scaleResults) setStream(dir, tg string, v streamResult) {
	r.stream = setKey(r.stream, dir, setKey(r.stream[dir], tg, v))
}

// setKey sets m[k] = v, making m first if it is nil, and returns m.
func setKey[K comparable, V any](m map[K]V, k K, v V) map[K]V {
	if m == nil {
		m = map[K]V{}
	}
	m[k] = v
	return m
}

// String renders the results as Markdown: one table per figure, then the
// targets as met/MISSED lines.
func (r *scaleResults) String() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.o

	w("# queue-proxy scale benchmark\n\n")
	w("%s, CPUs %s online, %s; load average %s before, %s after. Proxies pinned to CPU %s; the client (the driver), the backend and h2load to CPU %s. ",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), onlineCPUs(), runtime.Version(), r.loadavg[0], r.loadavg[1], o.proxyCPU, o.loadCPU)
	w("Each figure is measured once per target, on a proxy started afresh for each section; queue-proxy runs with the environment Knative gives it (CONTAINER_CONCURRENCY 0, request metrics %s, tracing off); took %v.\n\n",
		onOff(o.metrics), r.elapsed.Round(time.Second))

	w("## Idle memory\n\n")
	w("After start, 5 activator probes and 5 proxied requests, then %v idle. RssAnon is what each extra pod costs: the rest of VmRSS is mostly the binary's pages, page cache shared by every pod of a node.\n\n", o.settle)
	w("| target | VmRSS | RssAnon |\n|---|--:|--:|\n")
	for _, tg := range r.targets {
		m, ok := r.idle[tg]
		w("| %s | %s | %s |\n", tg, mibIf(ok, m.rss), mibIf(ok, m.anon))
	}

	w("\n## Idle keep-alive client connections\n\n")
	w("Each connection made one HTTP/1.1 request (GET /, 200), %d at a time, and stays open and idle; memory read after %v idle. Per connection: (memory with N open − memory with none) ÷ N.\n\n", openers, o.settle)
	r.memTable(&b, "connections", "conn", r.idle, r.conns)

	w("\n## Websockets\n\n")
	w("Opened through the proxy to the backend's echo endpoint (%d at a time, each echoing one message), then idle; the proxy holds a client and an upstream connection for each. Per websocket as above, over the same process before its first websocket.\n\n", openers)
	r.memTable(&b, "websockets", "websocket", r.wsBase, r.ws)
	w("\nEcho: %d of those websockets each send a %d-byte text message and wait for its echo, again and again, for %v (each message crosses the proxy twice).\n\n", o.echoConns, len(echoMessage), o.echoDuration)
	w("| target | messages/s | proxy CPU s / 10k messages | CPU ÷ bare |\n|---|--:|--:|--:|\n")
	for _, tg := range r.targets {
		e := r.echo[tg]
		w("| %s | %s | %s | %s |\n", tg, fmtNum(e.rate()), fmtCPU(e.cpuPer10k()), r.ratioCell(tg, e.cpuPer10k()/r.echo[bareName].cpuPer10k()))
	}

	w("\n## h2c\n\n")
	if r.h2cSkipped != "" {
		w("Not measured: %s.\n", r.h2cSkipped)
	} else {
		w("h2load (1 thread, h2c with prior knowledge, GET / answered with 2 bytes) for %v per load, after 2000 warm-up requests. The bare proxy runs with -h2c (accepts h2c, speaks h2c to the backend); queue-proxy sends an HTTP/2 request upstream as h2c by itself, and gets %s as Knative sets it for an h2c revision with autodetect-http2 (it changes only HTTP readiness probes).\n\n",
			o.h2cDuration, strings.Join(h2cEnv, " "))
		w("| load | target | req/s | proxy CPU s / 10k req | CPU ÷ bare |\n|---|---|--:|--:|--:|\n")
		for _, l := range h2cLoads {
			bare := r.h2c[l][bareName]
			for _, tg := range r.targets {
				v := r.h2c[l][tg]
				w("| %s | %s | %s | %s | %s |\n", l, tg, fmtNum(v.rps), fmtCPU(v.cpuPer10k()), r.ratioCell(tg, v.cpuPer10k()/bare.cpuPer10k()))
			}
		}
	}

	w("\n## Streaming\n\n")
	w("%s each way over HTTP/1.1, once per target: a POST to /upload (Content-Length set, body generated as it is sent, discarded by the backend) and a GET of /download?bytes=N (Content-Length N), read into nothing; MB = 10^6 bytes.\n\n", fmtBytes(o.streamBytes))
	w("| direction | target | MB/s | proxy CPU s / GiB | MB/s ÷ bare |\n|---|---|--:|--:|--:|\n")
	for _, dir := range []string{dirUpload, dirDownload} {
		bare := r.stream[dir][bareName]
		for _, tg := range r.targets {
			v := r.stream[dir][tg]
			w("| %s | %s | %s | %s | %s |\n", dir, tg, fmtNum(v.mbps()), fmtCPU(v.cpuPerGiB()), r.ratioCell(tg, v.mbps()/bare.mbps()))
		}
	}

	w("\nTargets (issue 15), queue-proxy against the bare proxy:\n\n")
	for _, line := range r.targetLines() {
		w("- %s\n", line)
	}
	return b.String()
}

// memTable renders memory with each count open and the cost per item.
func (r *scaleResults) memTable(b *strings.Builder, items, item string, base map[string]mem, points map[string][]memPoint) {
	fmt.Fprintf(b, "| target | %s | VmRSS | RssAnon | VmRSS / %s | RssAnon / %s |\n|---|--:|--:|--:|--:|--:|\n", items, item, item)
	for _, tg := range r.targets {
		m0, ok := base[tg]
		fmt.Fprintf(b, "| %s | 0 | %s | %s | | |\n", tg, mibIf(ok, m0.rss), mibIf(ok, m0.anon))
		for _, p := range points[tg] {
			rss, anon := perConnKiB(m0, p)
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s |\n", tg, p.n, mib(p.m.rss), mib(p.m.anon), fmtKiB(rss), fmtKiB(anon))
		}
	}
}

// ratioCell is a "÷ bare" cell: empty on the bare proxy's own row.
func (r *scaleResults) ratioCell(tg string, v float64) string {
	if tg == bareName {
		return ""
	}
	return fmtRatio(v)
}

// targetLines checks queue-proxy's figures against issue 15's targets,
// one "met: …" or "MISSED: …" line each ("not measured: …" without data).
func (r *scaleResults) targetLines() []string {
	var out []string
	check := func(ok bool, format string, args ...any) {
		verdict := "MISSED"
		if ok {
			verdict = "met"
		}
		out = append(out, fmt.Sprintf("%s: "+format, append([]any{verdict}, args...)...))
	}

	if m, ok := r.idle[scaleQPName]; ok {
		check(m.anon <= maxIdleAnon, "idle RssAnon %s (target ≤ %s)", mib(m.anon), mib(maxIdleAnon))
	} else {
		out = append(out, "not measured: idle RssAnon")
	}

	qp, bare := r.conns[scaleQPName], r.conns[bareName]
	if len(qp) > 0 && len(bare) > 0 && qp[len(qp)-1].n == bare[len(bare)-1].n {
		q, _ := perConnKiB(r.idle[scaleQPName], qp[len(qp)-1])
		bb, _ := perConnKiB(r.idle[bareName], bare[len(bare)-1])
		check(q <= bb+maxConnOverBareKiB, "VmRSS per idle keep-alive connection (%d open) %s, the bare proxy's %s (target ≤ bare + %.0f KiB = %s)",
			qp[len(qp)-1].n, fmtKiB(q), fmtKiB(bb), maxConnOverBareKiB, fmtKiB(bb+maxConnOverBareKiB))
	} else {
		out = append(out, "not measured: memory per idle keep-alive connection")
	}

	for _, dir := range []string{dirUpload, dirDownload} {
		q, okQ := r.stream[dir][scaleQPName]
		bb, okB := r.stream[dir][bareName]
		if !okQ || !okB {
			out = append(out, "not measured: streaming "+dir)
			continue
		}
		ratio := q.mbps() / bb.mbps()
		check(ratio >= minStreamRatio, "streaming %s %s MB/s = %s the bare proxy's %s MB/s (target ≥ %.2f×)",
			dir, fmtNum(q.mbps()), fmtRatio(ratio), fmtNum(bb.mbps()), minStreamRatio)
	}

	if r.h2cSkipped != "" {
		return append(out, "not measured: h2c CPU per request ("+r.h2cSkipped+")")
	}
	for _, l := range h2cLoads {
		q, okQ := r.h2c[l][scaleQPName]
		bb, okB := r.h2c[l][bareName]
		if !okQ || !okB {
			out = append(out, fmt.Sprintf("not measured: h2c CPU per request, %s", l))
			continue
		}
		ratio := q.cpuPer10k() / bb.cpuPer10k()
		check(ratio <= maxH2CCPURatio, "h2c CPU per request, %s: %s the bare h2c proxy's (target ≤ %.1f×)", l, fmtRatio(ratio), maxH2CCPURatio)
	}
	return out
}

// onlineCPUs is the kernel's list of online CPUs ("0-1"), or "?";
// runtime.NumCPU would count only the CPUs this pinned process may use.
func onlineCPUs() string {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// mibIf is mib(n), or "–" when the figure is missing.
func mibIf(ok bool, n int64) string {
	if !ok {
		return "–"
	}
	return mib(n)
}

func fmtKiB(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f KiB", v)
}

// fmtNum renders a rate without decimals; "–" for NaN or ±Inf.
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.0f", v)
}

// fmtBytes renders a size in GiB or MiB when it is a whole number of
// them, else in bytes.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
