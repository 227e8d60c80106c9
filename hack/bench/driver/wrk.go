package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	requests      int64
	rps           float64
	p50, p90, p99 time.Duration
	socketErrors  int64 // connect + read + write + timeout
	non2xx3xx     int64
}

// parseWrk reads the output of `wrk --latency`.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveReqs bool
	pct := map[string]*time.Duration{"50%": &r.p50, "90%": &r.p90, "99%": &r.p99}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
		case len(f) == 2 && pct[f[0]] != nil:
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, err
			}
			*pct[f[0]] = d
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("request count %q: %w", f[0], err)
			}
			r.requests, haveReqs = n, true
		case f[0] == "Requests/sec:" && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("Requests/sec %q: %w", f[1], err)
			}
			r.rps, haveRPS = v, true
		case f[0] == "Socket" && len(f) > 2 && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return r, fmt.Errorf("socket errors %q: %w", sc.Text(), err)
				}
				r.socketErrors += n
			}
		case strings.HasPrefix(sc.Text(), "  Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return r, fmt.Errorf("non-2xx count %q: %w", sc.Text(), err)
			}
			r.non2xx3xx = n
		}
	}
	if !haveRPS || !haveReqs || r.p50 == 0 {
		return r, errors.New("wrk output lacks Requests/sec, the request count or the latency distribution")
	}
	return r, nil
}

// parseWrkDuration parses wrk's "664.00us", "1.08ms", "2.00s", "1.00m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}
