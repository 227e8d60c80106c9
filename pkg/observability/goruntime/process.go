package goruntime

import (
	"io"
	"os"
)

// userHZ is the kernel's clock tick (USER_HZ) in /proc times. It is 100 on
// every Linux architecture; procfs assumes it too.
const userHZ = 100

// procValues are the process collector's values at one collection. Each
// group is valid only when its ok flag is set: the Prometheus process
// collector leaves out what it cannot read, and so do we.
type procValues struct {
	statOK                  bool
	cpuSeconds, vsize, rss  float64
	startOK                 bool
	startTime               float64
	fdsOK                   bool
	openFDs                 float64
	limitsOK                bool
	maxFDs, maxVsize        float64
	netOK                   bool
	receiveBytes, sendBytes float64
}

// procReader reads the process collector's values from a proc file system
// (/proc, or a directory laid out like it in tests), reusing one buffer.
// It is not safe for concurrent use.
type procReader struct {
	root     string // "/proc"
	self     string // root + "/self"
	pageSize int
	buf      []byte

	// startTime is constant for the life of the process: read once.
	startTime float64
	startOK   bool
}

func newProcReader(root string) *procReader {
	return &procReader{root: root, self: root + "/self", pageSize: os.Getpagesize(), buf: make([]byte, 0, 4096)}
}

// read fills v, as the Prometheus process collector computes it:
//
//	process_cpu_seconds_total         (utime + stime) / USER_HZ        /proc/self/stat
//	process_virtual_memory_bytes      vsize                            /proc/self/stat
//	process_resident_memory_bytes     rss * page size                  /proc/self/stat
//	process_start_time_seconds        btime + starttime / USER_HZ      /proc/stat, /proc/self/stat
//	process_open_fds                  entries of /proc/self/fd (its size, where the kernel reports it)
//	process_max_fds                   soft "Max open files"            /proc/self/limits
//	process_virtual_memory_max_bytes  soft "Max address space"         /proc/self/limits
//	process_network_receive_bytes_total  IpExt InOctets               /proc/self/net/netstat
//	process_network_transmit_bytes_total IpExt OutOctets              /proc/self/net/netstat
func (p *procReader) read(v *procValues) {
	*v = procValues{}
	if data, err := p.readFile(p.self + "/stat"); err == nil {
		if s, err := parseStat(data); err == nil {
			v.statOK = true
			v.cpuSeconds = float64(s.utime+s.stime) / userHZ
			v.vsize = float64(s.vsize)
			v.rss = float64(s.rss * int64(p.pageSize))
			if !p.startOK {
				if data, err := p.readFile(p.root + "/stat"); err == nil {
					if btime, err := parseBootTime(data); err == nil {
						p.startTime, p.startOK = float64(btime)+float64(s.starttime)/userHZ, true
					}
				}
			}
			v.startTime, v.startOK = p.startTime, p.startOK
		}
	}
	if n, err := countFDs(p.self+"/fd", p.root == "/proc"); err == nil {
		v.openFDs, v.fdsOK = float64(n), true
	}
	if data, err := p.readFile(p.self + "/limits"); err == nil {
		if files, space, err := parseLimits(data); err == nil {
			v.maxFDs, v.maxVsize, v.limitsOK = float64(files), float64(space), true
		}
	}
	if data, err := p.readFile(p.self + "/net/netstat"); err == nil {
		if in, out, err := parseNetstat(data); err == nil {
			v.receiveBytes, v.sendBytes, v.netOK = in, out, true
		}
	}
}

// readFile reads a whole file into p.buf. /proc files report size 0, so it
// reads until EOF, growing the buffer as needed.
func (p *procReader) readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := p.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			p.buf = b
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// countFDs counts the open file descriptors: on the real /proc of Linux
// 6.2 and later the size of the fd directory is their number; otherwise its
// entries are counted (the directory's own descriptor included, as procfs
// counts it).
func countFDs(dir string, realProc bool) (int, error) {
	if realProc {
		fi, err := os.Stat(dir)
		if err != nil {
			return 0, err
		}
		if fi.Size() > 0 {
			return int(fi.Size()), nil
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(256)
		n += len(names)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// processFamilies are the process_* families in name order, with the
// client's help texts.
func processFamilies() []family {
	return []family{
		{name: "process_cpu_seconds_total", typ: "counter", help: "Total user and system CPU time spent in seconds.",
			value: func(s *snapshot) (float64, bool) { return s.proc.cpuSeconds, s.proc.statOK }},
		{name: "process_max_fds", typ: "gauge", help: "Maximum number of open file descriptors.",
			value: func(s *snapshot) (float64, bool) { return s.proc.maxFDs, s.proc.limitsOK }},
		{name: "process_network_receive_bytes_total", typ: "counter", help: "Number of bytes received by the process over the network.",
			value: func(s *snapshot) (float64, bool) { return s.proc.receiveBytes, s.proc.netOK }},
		{name: "process_network_transmit_bytes_total", typ: "counter", help: "Number of bytes sent by the process over the network.",
			value: func(s *snapshot) (float64, bool) { return s.proc.sendBytes, s.proc.netOK }},
		{name: "process_open_fds", typ: "gauge", help: "Number of open file descriptors.",
			value: func(s *snapshot) (float64, bool) { return s.proc.openFDs, s.proc.fdsOK }},
		{name: "process_resident_memory_bytes", typ: "gauge", help: "Resident memory size in bytes.",
			value: func(s *snapshot) (float64, bool) { return s.proc.rss, s.proc.statOK }},
		{name: "process_start_time_seconds", typ: "gauge", help: "Start time of the process since unix epoch in seconds.",
			value: func(s *snapshot) (float64, bool) { return s.proc.startTime, s.proc.startOK }},
		{name: "process_virtual_memory_bytes", typ: "gauge", help: "Virtual memory size in bytes.",
			value: func(s *snapshot) (float64, bool) { return s.proc.vsize, s.proc.statOK }},
		{name: "process_virtual_memory_max_bytes", typ: "gauge", help: "Maximum amount of virtual memory available in bytes.",
			value: func(s *snapshot) (float64, bool) { return s.proc.maxVsize, s.proc.limitsOK }},
	}
}
