package sharedmain

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitShare is the part of the container's memory limit given to
// the Go runtime as its soft limit; the rest is headroom for what the
// runtime does not count (kernel buffers of the connections, page tables).
const memoryLimitShare = 0.9

// Where the container's memory limit is read: cgroup v2 (with the cgroup
// namespace Kubernetes gives containers, the container's own directory is
// the root), then cgroup v1.
const (
	cgroupV2MemoryMax = "/sys/fs/cgroup/memory.max"
	cgroupV1MemoryMax = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
)

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the
// container's memory limit, so that a proxy under pressure collects garbage
// harder instead of being OOM-killed with requests in flight. GOMEMLIMIT in
// the environment wins (the runtime has applied it already); without a
// container limit (cgroup "max", not in a cgroup) the runtime keeps its
// default of no limit. GOGC is left to the environment.
func setMemoryLimit(logf func(string, ...any)) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return
	}
	limit, ok := cgroupMemoryLimit(os.ReadFile)
	if !ok {
		return
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	logf("Go memory limit %d bytes: %.0f%% of the container's memory limit of %d bytes", soft, memoryLimitShare*100, limit)
}

// cgroupMemoryLimit returns the container's memory limit in bytes, from
// cgroup v2, else v1. No limit ("max", or v1's page-rounded maximum),
// unreadable files and malformed values report false.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, bool) {
	for _, path := range []string{cgroupV2MemoryMax, cgroupV1MemoryMax} {
		b, err := readFile(path)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 { // v1 reports "unlimited" as about 2^63
			return 0, false
		}
		return n, true
	}
	return 0, false
}
