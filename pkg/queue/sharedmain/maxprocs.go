package sharedmain

import (
	"os"
	"runtime"
	"time"

	"go.uber.org/automaxprocs/maxprocs"
)

// maxProcsDelay is how long after startup setMaxProcs runs: long after the
// first probes of a cold start have been answered, long before any load.
const maxProcsDelay = 100 * time.Millisecond

// setMaxProcs sizes GOMAXPROCS for a sidecar and reports what it did.
//
// Go 1.25+ already derives GOMAXPROCS from the cgroup CPU limit and keeps it
// updated when the limit changes (in-place pod resize), but it rounds the
// limit UP and never goes below 2: on a 0.5-CPU limit it runs 2 Ps, which
// burn the CFS quota in a quarter of each period and then stall — tail
// latency for every request through the proxy. automaxprocs rounds DOWN
// (minimum 1), as Knative's queue-proxy does, but freezes the value.
//
// So: an explicit GOMAXPROCS variable wins (neither touches it); otherwise
// automaxprocs' value is kept only when it is lower than the runtime's, and
// in every other case the runtime's automatic, updating default is restored.
func setMaxProcs(logf func(string, ...any)) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	runtimeDefault := runtime.GOMAXPROCS(0)
	undo, err := maxprocs.Set(maxprocs.Logger(func(string, ...any) {}))
	if err == nil && runtime.GOMAXPROCS(0) < runtimeDefault {
		logf("GOMAXPROCS=%d from the CPU quota, rounded down (the runtime would use %d)", runtime.GOMAXPROCS(0), runtimeDefault)
		return
	}
	undo()
	runtime.SetDefaultGOMAXPROCS()
}
