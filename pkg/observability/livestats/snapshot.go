package livestats

import "time"

// Snapshot is the live view at one time, ready for encoding/json (field
// names are stable) or WriteText. It contains no NaN or infinity: an empty
// window reports zeros.
type Snapshot struct {
	// Time is the now given to Recorder.Snapshot.
	Time time.Time `json:"time"`
	// UptimeSeconds is the time since the Recorder's start.
	UptimeSeconds float64 `json:"uptimeSeconds"`
	// InFlight and Queued are live gauges the Recorder does not track: the
	// caller (which has the breaker) sets them after Recorder.Snapshot,
	// which leaves them 0.
	InFlight int64 `json:"inFlight"`
	Queued   int64 `json:"queued"`
	// Windows are the 10 s, 1 min and 10 min windows, in that order.
	Windows []Window `json:"windows"`
}

// Window is the figures of one window (see Recorder for which samples it
// holds).
type Window struct {
	// Name is "10s", "1m" or "10m".
	Name string `json:"name"`
	// LengthSeconds is the window's nominal length.
	LengthSeconds float64 `json:"lengthSeconds"`
	// CoveredSeconds is the time the window's samples were recorded in:
	// from the opening of its oldest slot to the snapshot's time. It is
	// at most LengthSeconds, and less for a process younger than the
	// window (then it is the uptime), right after a late Rotate, and by up
	// to one slot (plus the ticker's phase) in steady state. 0 when the
	// window has no slot (no Rotate within its length).
	CoveredSeconds float64 `json:"coveredSeconds"`
	// Requests is the number of requests recorded in the window, of every
	// outcome; RatePerSecond is Requests / CoveredSeconds (0 when
	// CoveredSeconds is 0).
	Requests      uint64  `json:"requests"`
	RatePerSecond float64 `json:"ratePerSecond"`
	// Admitted counts the requests that passed the breaker.
	Admitted uint64 `json:"admitted"`
	// The requests by Outcome; they sum to Requests.
	OK             uint64 `json:"ok"`
	QueueFull      uint64 `json:"queueFull"`
	Timeouts       uint64 `json:"timeouts"`
	UpstreamErrors uint64 `json:"upstreamErrors"`
	OtherErrors    uint64 `json:"otherErrors"`
	// Total, QueueWait and UserContainer are the latencies of Sample's
	// Total, QueueWait and Upstream.
	Total         Latency `json:"total"`
	QueueWait     Latency `json:"queueWait"`
	UserContainer Latency `json:"userContainer"`
}

// Latency is one latency's percentiles in a window, in milliseconds:
// nearest-rank percentiles of the histogram (see histogram.go for the
// bucket layout and the error bound: within 3.125 % from 1 µs to 1065 s).
// With Count 0 every percentile is 0.
type Latency struct {
	// Count is the number of values the percentiles are of: every request
	// for Total, all but QueueFull for QueueWait, the admitted ones for
	// UserContainer.
	Count  uint64  `json:"count"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
}

// Snapshot returns the windows as of now (a time earlier than the live
// slot's opening is taken as that opening). It does not rotate; InFlight
// and Queued are left for the caller to set. It allocates the Windows
// slice and takes the lock Rotate takes; it never blocks Record.
func (r *Recorder) Snapshot(now time.Time) Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := &r.rot
	d := max(r.sinceStart(now), rt.liveOpen)
	tick := int64(d / time.Second)
	r.readLive(false)
	s := Snapshot{Time: now, UptimeSeconds: d.Seconds(), Windows: make([]Window, numRings)}
	for i := range rt.rings {
		w := &s.Windows[i]
		w.Name = rings[i].name
		w.LengthSeconds = (rings[i].slot * time.Duration(rings[i].slots)).Seconds()
		oldest, ok := rt.window(&rt.rings[i], tick)
		if !ok {
			continue
		}
		w.fill(&rt.merged)
		w.CoveredSeconds = (d - oldest).Seconds()
		if w.CoveredSeconds > 0 {
			w.RatePerSecond = float64(w.Requests) / w.CoveredSeconds
		}
	}
	return s
}

// fill sets the counters and latencies of w from the cells of a window.
func (w *Window) fill(cells *[numCells]uint64) {
	byOutcome := [numOutcomes]*uint64{&w.OK, &w.QueueFull, &w.Timeouts, &w.UpstreamErrors, &w.OtherErrors}
	for c := range countCells {
		n := cells[c]
		w.Requests += n
		*byOutcome[c%numOutcomes] += n
		if c >= numOutcomes {
			w.Admitted += n
		}
	}
	w.Total = latencyOf((*[numBuckets]uint64)(cells[totalBase:]))
	w.QueueWait = latencyOf((*[numBuckets]uint64)(cells[waitBase:]))
	w.UserContainer = latencyOf((*[numBuckets]uint64)(cells[upstreamBase:]))
}

func latencyOf(h *[numBuckets]uint64) Latency {
	var n uint64
	for _, c := range h {
		n += c
	}
	ms := func(q uint64) float64 { return float64(percentile(h, n, q)) / float64(time.Millisecond) }
	return Latency{Count: n, P50Ms: ms(500), P90Ms: ms(900), P99Ms: ms(990), P999Ms: ms(999)}
}
