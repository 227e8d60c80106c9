package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// h2cLoad is one h2load shape: clients (TCP connections), each with
// streams concurrent requests in flight.
type h2cLoad struct {
	conns, streams int
}

func (l h2cLoad) String() string {
	return fmt.Sprintf("%d conn%s × %d streams", l.conns, plural(l.conns), l.streams)
}

// h2cLoads are the h2c section's loads: many streams on one connection (an
// ingress multiplexing everything), and a few streams on each of several.
var h2cLoads = []h2cLoad{{1, 100}, {16, 10}}

// h2cResult is one h2load run's figures on one target.
type h2cResult struct {
	h2loadResult
	cpu float64 // proxy CPU-seconds over the run
}

// cpuPer10k is the proxy's CPU-seconds per 10k requests.
func (r h2cResult) cpuPer10k() float64 {
	if r.succeeded <= 0 {
		return nan()
	}
	return r.cpu / float64(r.succeeded) * 1e4
}

// h2c measures tg under each of h2cLoads, driven by h2load (one thread,
// h2c with prior knowledge, GET /) on the load CPU, on a fresh process
// started with its h2c set-up (bare: -h2c; queue-proxy: h2cEnv), after a
// warm-up of 2000 requests.
func (s *scaleBench) h2c(ctx context.Context, tg scaleTarget) error {
	c, err := tg.start(s.backend.port, true)
	if err != nil {
		return err
	}
	defer c.stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/", c.port)
	if _, err := s.runH2load(ctx, url, "-n", "2000", "-c", "1", "-m", "10"); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	secs := strconv.Itoa(int(s.o.h2cDuration.Round(time.Second).Seconds()))
	for _, l := range h2cLoads {
		var r h2cResult
		r.cpu, err = cpuDelta(c.cmd.Process.Pid, func() error {
			var err error
			r.h2loadResult, err = s.runH2load(ctx, url, "-c", strconv.Itoa(l.conns), "-m", strconv.Itoa(l.streams), "-D", secs)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", l, err)
		}
		s.res.setH2C(l, tg.name, r)
		logf("  %s: %.0f req/s, %s CPU-s / 10k requests", l, r.rps, fmtCPU(r.cpuPer10k()))
	}
	return nil
}

// runH2load runs h2load with one thread on the load CPU and checks that
// every request it counts succeeded over h2c with a 2xx.
func (s *scaleBench) runH2load(ctx context.Context, url string, args ...string) (h2loadResult, error) {
	cmd := append([]string{"-c", s.o.loadCPU, s.o.h2loadBin, "-t", "1"}, args...)
	cctx, cancel := context.WithTimeout(ctx, s.o.h2cDuration+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, "taskset", append(cmd, url)...).CombinedOutput()
	if err != nil {
		return h2loadResult{}, fmt.Errorf("h2load: %v\n%s", err, out)
	}
	r, err := parseH2load(string(out))
	if err == nil {
		err = r.check()
	}
	if err != nil {
		return r, fmt.Errorf("%v\n%s", err, out)
	}
	return r, nil
}

// h2loadResult is what one h2load run reports.
type h2loadResult struct {
	protocol                                   string // "Application protocol:", h2c expected
	rps                                        float64
	done, succeeded                            int64
	failed, errored, timeout                   int64
	status2xx, status3xx, status4xx, status5xx int64
}

// check fails a run that is not all successful h2c 2xx answers.
func (r h2loadResult) check() error {
	switch {
	case r.protocol != "h2c":
		return fmt.Errorf("h2load spoke %q, not h2c", r.protocol)
	case r.succeeded == 0:
		return errors.New("h2load: no request succeeded")
	case r.failed+r.errored+r.timeout > 0:
		return fmt.Errorf("h2load: %d failed, %d errored, %d timed out", r.failed, r.errored, r.timeout)
	case r.status3xx+r.status4xx+r.status5xx > 0 || r.status2xx < r.succeeded:
		// The status counts include answers to requests still running
		// when a timed run ends, which "succeeded" leaves out.
		return fmt.Errorf("h2load: %d 2xx, %d 3xx, %d 4xx, %d 5xx answers for %d requests that succeeded",
			r.status2xx, r.status3xx, r.status4xx, r.status5xx, r.succeeded)
	}
	return nil
}

// parseH2load reads h2load's summary: the protocol, "finished in …, N
// req/s", the "requests:" counts and the "status codes:" counts.
func parseH2load(out string) (h2loadResult, error) {
	var r h2loadResult
	var haveRPS, haveReqs, haveCodes bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var err error
		switch {
		case strings.HasPrefix(line, "Application protocol:"):
			r.protocol = strings.TrimSpace(strings.TrimPrefix(line, "Application protocol:"))
		case strings.HasPrefix(line, "finished in "):
			// finished in 2.01s, 32162.50 req/s, 753.88KB/s
			f := strings.Split(line, ", ")
			if len(f) < 2 || !strings.HasSuffix(f[1], " req/s") {
				return r, fmt.Errorf("h2load: malformed line %q", line)
			}
			r.rps, err = strconv.ParseFloat(strings.TrimSuffix(f[1], " req/s"), 64)
			haveRPS = true
		case strings.HasPrefix(line, "requests: "):
			// requests: 64325 total, 64425 started, 64325 done, 64325 succeeded, 0 failed, 0 errored, 0 timeout
			err = countFields(strings.TrimPrefix(line, "requests: "), map[string]*int64{
				"done": &r.done, "succeeded": &r.succeeded, "failed": &r.failed, "errored": &r.errored, "timeout": &r.timeout})
			haveReqs = true
		case strings.HasPrefix(line, "status codes: "):
			// status codes: 64325 2xx, 0 3xx, 0 4xx, 0 5xx
			err = countFields(strings.TrimPrefix(line, "status codes: "), map[string]*int64{
				"2xx": &r.status2xx, "3xx": &r.status3xx, "4xx": &r.status4xx, "5xx": &r.status5xx})
			haveCodes = true
		}
		if err != nil {
			return r, fmt.Errorf("h2load: line %q: %w", line, err)
		}
	}
	if !haveRPS || !haveReqs || !haveCodes {
		return r, errors.New("h2load: no summary in its output")
	}
	return r, nil
}

// countFields reads "N name, N name, …" into the counts named in dst; it
// fails on a malformed item or when a name in dst is missing.
func countFields(s string, dst map[string]*int64) error {
	seen := 0
	for item := range strings.SplitSeq(s, ", ") {
		f := strings.Fields(item)
		if len(f) != 2 {
			return fmt.Errorf("malformed count %q", item)
		}
		p := dst[f[1]]
		if p == nil {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("malformed count %q", item)
		}
		*p = n
		seen++
	}
	if seen != len(dst) {
		return fmt.Errorf("%d of %d counts missing", len(dst)-seen, len(dst))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
