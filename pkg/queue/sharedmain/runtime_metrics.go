package sharedmain

import (
	"time"

	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	"github.com/queue-proxy/queue-proxy/pkg/observability/goruntime"
)

// addRuntimeMetrics adds the newest generation's Go runtime families to the
// request metrics (CONTRACT.md §5.3): the OpenTelemetry runtime
// instrumentation's scope, on Prometheus and over OTLP, with Knative's
// minimum memory-statistics interval (OBSERVABILITY_CONFIG
// runtime.exportInterval, 15 s by default); and, on Prometheus, the
// families of Knative's default Prometheus registry (Go and process
// collectors, promhttp's scrape counters).
func addRuntimeMetrics(mc *pkgobs.MetricsConfig, obs observability, prometheus bool) {
	mc.Runtime = goruntime.NewRuntime(obs.config.Runtime.ExportInterval, time.Now).Scope // <= 0: 15 s
	if prometheus {
		d := goruntime.NewPromDefaults()
		mc.PromExtra = d.Append
		mc.WrapPromHandler = d.Instrument
	}
}
