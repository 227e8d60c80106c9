package goruntime

import (
	"bytes"
	"errors"
	"math"
	"strconv"
)

// Decoders of the /proc files the Prometheus process collector reads
// (through github.com/prometheus/procfs), written for just the fields it
// uses. Their input comes from the kernel, but they are fuzzed as any
// decoder of outside input is: they never panic and reject what they cannot
// read rather than guess.

var errProcFormat = errors.New("goruntime: unexpected /proc file format")

// procStat holds the fields of /proc/<pid>/stat (proc(5)) the process
// collector uses.
type procStat struct {
	utime, stime uint64 // CPU time in user and kernel mode, in clock ticks
	starttime    uint64 // clock ticks after boot when the process started
	vsize        uint64 // virtual memory size in bytes
	rss          int64  // resident set size in pages
}

// The 0-based positions of the fields after the command's closing
// parenthesis: field 3 of proc(5), the state, is position 0.
const (
	statUtime     = 11
	statStime     = 12
	statStarttime = 19
	statVsize     = 20
	statRSS       = 21
)

// parseStat decodes a /proc/<pid>/stat line. The command (field 2) is
// enclosed in parentheses and may contain spaces and parentheses itself, so
// the fields are counted from the last ')'.
func parseStat(data []byte) (procStat, error) {
	var s procStat
	l, r := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if l < 0 || r < l {
		return s, errProcFormat
	}
	rest := data[r+1:]
	for i := 0; i <= statRSS; i++ {
		var field []byte
		field, rest = nextField(rest)
		if field == nil {
			return procStat{}, errProcFormat
		}
		var err error
		switch i {
		case statUtime:
			s.utime, err = parseDecimal(field)
		case statStime:
			s.stime, err = parseDecimal(field)
		case statStarttime:
			s.starttime, err = parseDecimal(field)
		case statVsize:
			s.vsize, err = parseDecimal(field)
		case statRSS:
			s.rss, err = strconv.ParseInt(string(field), 10, 64)
		}
		if err != nil {
			return procStat{}, errProcFormat
		}
	}
	return s, nil
}

// parseBootTime returns the "btime" of /proc/stat: the boot time in seconds
// since the Unix epoch.
func parseBootTime(data []byte) (uint64, error) {
	for line := range bytes.Lines(data) {
		key, rest := nextField(line)
		if string(key) != "btime" {
			continue
		}
		value, rest := nextField(rest)
		if extra, _ := nextField(rest); value == nil || extra != nil {
			return 0, errProcFormat
		}
		return parseDecimal(value)
	}
	return 0, errProcFormat
}

// unlimited is how a limit of "unlimited" reads, as procfs reads it.
const unlimited = math.MaxUint64

// parseLimits returns the soft limits "Max open files" and "Max address
// space" of /proc/<pid>/limits: a header line, then one line per limit with
// its name, soft limit, hard limit and (for most) units, in columns. A
// limit that is not listed is 0, as procfs has it.
func parseLimits(data []byte) (openFiles, addressSpace uint64, err error) {
	for line := range bytes.Lines(data) {
		var dst *uint64
		switch {
		case bytes.HasPrefix(line, []byte("Max open files ")):
			dst, line = &openFiles, line[len("Max open files "):]
		case bytes.HasPrefix(line, []byte("Max address space ")):
			dst, line = &addressSpace, line[len("Max address space "):]
		default:
			continue
		}
		soft, rest := nextField(line)
		if hard, _ := nextField(rest); hard == nil {
			return 0, 0, errProcFormat
		}
		if string(soft) == "unlimited" {
			*dst = unlimited
			continue
		}
		if *dst, err = parseDecimal(soft); err != nil {
			return 0, 0, err
		}
	}
	return openFiles, addressSpace, nil
}

// parseNetstat returns InOctets and OutOctets of the IpExt section of
// /proc/<pid>/net/netstat: the bytes the process's network namespace
// received and sent. Each section is two lines, "Proto: Name1 Name2 ..."
// then "Proto: value1 value2 ...". A missing section or counter reads 0, as
// procfs has it; a section whose lines disagree is an error.
func parseNetstat(data []byte) (in, out float64, err error) {
	var names []byte
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\n")
		if !bytes.HasPrefix(line, []byte("IpExt: ")) {
			continue
		}
		if names == nil {
			names = line
			continue
		}
		return ipExtOctets(names, line)
	}
	if names != nil {
		return 0, 0, errProcFormat
	}
	return 0, 0, nil
}

// ipExtOctets pairs the IpExt names with their values.
func ipExtOctets(names, values []byte) (in, out float64, err error) {
	_, names = nextField(names) // "IpExt:"
	_, values = nextField(values)
	for {
		var name, value []byte
		name, names = nextField(names)
		value, values = nextField(values)
		if name == nil || value == nil {
			if name != nil || value != nil {
				return 0, 0, errProcFormat
			}
			return in, out, nil
		}
		v, err := strconv.ParseFloat(string(value), 64)
		if err != nil {
			return 0, 0, errProcFormat
		}
		switch string(name) {
		case "InOctets":
			in = v
		case "OutOctets":
			out = v
		}
	}
}

// nextField splits off the first space- or tab-separated field of b (nil
// when there is none) and returns it with the rest.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	if i == j {
		return nil, nil
	}
	return b[i:j], b[j:]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseDecimal reads an unsigned decimal integer.
func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errProcFormat
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errProcFormat
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, errProcFormat
		}
		v = v*10 + d
	}
	return v, nil
}
