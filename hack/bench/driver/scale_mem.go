package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mem is a process's resident memory, in bytes: all of it (VmRSS) and its
// anonymous part (RssAnon: heap, stacks, runtime; not the binary's pages,
// which are page cache shared by every pod of a node running it).
type mem struct {
	rss, anon int64
}

// readMem reads pid's VmRSS and RssAnon from /proc/PID/status.
func readMem(pid int) (mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}, err
	}
	return parseStatusRSSAnon(string(b))
}

// parseStatusRSSAnon reads VmRSS and RssAnon ("RssAnon:	    2140 kB")
// from a /proc/PID/status file; either missing or malformed is an error.
func parseStatusRSSAnon(status string) (mem, error) {
	m := mem{rss: -1, anon: -1}
	for line := range strings.Lines(status) {
		name, value, ok := strings.Cut(line, ":")
		var dst *int64
		switch {
		case !ok:
			continue
		case name == "VmRSS":
			dst = &m.rss
		case name == "RssAnon":
			dst = &m.anon
		default:
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return mem{}, fmt.Errorf("malformed /proc status line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return mem{}, fmt.Errorf("malformed /proc status line %q", strings.TrimSpace(line))
		}
		*dst = kb << 10
	}
	if m.rss < 0 || m.anon < 0 {
		return mem{}, errors.New("/proc status lacks VmRSS or RssAnon")
	}
	return m, nil
}

// memPoint is a process's memory with n connections (or websockets) open.
type memPoint struct {
	n int
	m mem
}

// perConnKiB is what each of at.n connections costs over base (the same
// process with none open), in KiB: (at − base) ÷ n, for VmRSS and
// RssAnon. It is NaN for n ≤ 0 and may be negative when the process
// returned memory in between.
func perConnKiB(base mem, at memPoint) (rss, anon float64) {
	if at.n <= 0 {
		return nan(), nan()
	}
	n := float64(at.n) * 1024
	return float64(at.m.rss-base.rss) / n, float64(at.m.anon-base.anon) / n
}
