package queue

import (
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	netstats "knative.dev/networking/pkg/http/stats"

	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
)

// Field numbers of Knative's autoscaler Stat message
// (pkg/autoscaler/metrics/stat.proto). All doubles but pod_name and
// timestamp; zero values are omitted on the wire, as proto3 does.
const (
	statPodName                   = 1
	statAverageConcurrentRequests = 2
	statAverageProxiedConcurrency = 3
	statRequestCount              = 4
	statProxiedRequestCount       = 5
	statProcessUptime             = 6
	// statTimestamp (7, int64) is never set by Knative's queue-proxy.
)

// ProtobufStatsReporter keeps the latest autoscaler Stat, encoded, and serves
// it on the autoscaler metrics port (:9090, any path the mux routes here).
// Report is called once per reporting period; ServeHTTP returns the last
// report without computing anything, whatever the Accept header says, with
// Content-Type application/protobuf (CONTRACT.md §5.1).
type ProtobufStatsReporter struct {
	podName         string
	startTime       time.Time
	reportingPeriod float64 // seconds; request counts are divided by it
	stat            atomic.Pointer[[]byte]
}

// NewProtobufStatsReporter returns a reporter for pod whose first Stat holds
// only the pod name. startTime is the origin of process_uptime.
func NewProtobufStatsReporter(pod string, startTime time.Time, reportingPeriod time.Duration) *ProtobufStatsReporter {
	r := &ProtobufStatsReporter{podName: pod, startTime: startTime, reportingPeriod: reportingPeriod.Seconds()}
	b := pbwire.AppendString(pbwire.AppendTag(nil, statPodName, pbwire.BytesType), pod)
	r.stat.Store(&b)
	return r
}

// Report encodes the window's figures as the Stat to serve from now on.
func (r *ProtobufStatsReporter) Report(now time.Time, s netstats.RequestStatsReport) {
	b := make([]byte, 0, len(r.podName)+2+5*9)
	if r.podName != "" {
		b = pbwire.AppendString(pbwire.AppendTag(b, statPodName, pbwire.BytesType), r.podName)
	}
	b = appendDouble(b, statAverageConcurrentRequests, s.AverageConcurrency)
	b = appendDouble(b, statAverageProxiedConcurrency, s.AverageProxiedConcurrency)
	b = appendDouble(b, statRequestCount, s.RequestCount/r.reportingPeriod)
	b = appendDouble(b, statProxiedRequestCount, s.ProxiedRequestCount/r.reportingPeriod)
	b = appendDouble(b, statProcessUptime, now.Sub(r.startTime).Seconds())
	r.stat.Store(&b)
}

func appendDouble(b []byte, n uint32, v float64) []byte {
	if v == 0 {
		return b
	}
	return pbwire.AppendFixed64(pbwire.AppendTag(b, n, pbwire.Fixed64Type), math.Float64bits(v))
}

// ServeHTTP writes the latest Stat.
func (r *ProtobufStatsReporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	b := *r.stat.Load()
	h := w.Header()
	h["Content-Type"] = protobufContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
}

var protobufContentType = []string{"application/protobuf"}
