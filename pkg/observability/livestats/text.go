package livestats

import (
	"io"
	"strconv"
	"time"
)

// WriteText writes s as a plain-text table for reading in a terminal
// (`curl .../debug/stats`): a header with the time, uptime and gauges, then
// one block per window with its counters and a row per latency (total,
// queue wait, user container) with count and P50, P90, P99 and P99.9 in
// milliseconds with three decimals. Rates have two decimals, seconds one.
// It returns the writer's error.
func (s Snapshot) WriteText(w io.Writer) error {
	b := make([]byte, 0, 512+len(s.Windows)*640)
	b = append(b, "live stats at "...)
	b = s.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, ", uptime "...)
	b = appendSeconds(b, s.UptimeSeconds)
	b = append(b, "\nin flight "...)
	b = strconv.AppendInt(b, s.InFlight, 10)
	b = append(b, ", queued "...)
	b = strconv.AppendInt(b, s.Queued, 10)
	b = append(b, '\n')
	for i := range s.Windows {
		b = s.Windows[i].appendText(b)
	}
	_, err := w.Write(b)
	return err
}

const (
	labelWidth = 16
	countWidth = 10
	msWidth    = 12
)

func (win *Window) appendText(b []byte) []byte {
	b = append(b, "\nwindow "...)
	b = append(b, win.Name...)
	b = append(b, " (covered "...)
	b = appendSeconds(b, win.CoveredSeconds)
	b = append(b, ")\n  requests "...)
	b = strconv.AppendUint(b, win.Requests, 10)
	b = append(b, " ("...)
	b = strconv.AppendFloat(b, win.RatePerSecond, 'f', 2, 64)
	b = append(b, "/s), admitted "...)
	b = strconv.AppendUint(b, win.Admitted, 10)
	b = append(b, "\n  ok "...)
	b = strconv.AppendUint(b, win.OK, 10)
	b = append(b, ", queue full "...)
	b = strconv.AppendUint(b, win.QueueFull, 10)
	b = append(b, ", timeouts "...)
	b = strconv.AppendUint(b, win.Timeouts, 10)
	b = append(b, ", upstream errors "...)
	b = strconv.AppendUint(b, win.UpstreamErrors, 10)
	b = append(b, ", other errors "...)
	b = strconv.AppendUint(b, win.OtherErrors, 10)
	b = append(b, "\n  "...)
	b = padRight(b, "latency (ms)", labelWidth)
	b = padLeft(b, "count", countWidth)
	for _, h := range [...]string{"p50", "p90", "p99", "p99.9"} {
		b = padLeft(b, h, msWidth)
	}
	b = append(b, '\n')
	b = win.Total.appendRow(b, "total")
	b = win.QueueWait.appendRow(b, "queue wait")
	b = win.UserContainer.appendRow(b, "user container")
	return b
}

func (l *Latency) appendRow(b []byte, label string) []byte {
	var num [32]byte
	b = append(b, "  "...)
	b = padRight(b, label, labelWidth)
	b = padLeft(b, string(strconv.AppendUint(num[:0], l.Count, 10)), countWidth)
	for _, v := range [...]float64{l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms} {
		b = padLeft(b, string(strconv.AppendFloat(num[:0], v, 'f', 3, 64)), msWidth)
	}
	return append(b, '\n')
}

func appendSeconds(b []byte, sec float64) []byte {
	b = strconv.AppendFloat(b, sec, 'f', 1, 64)
	return append(b, " s"...)
}

func padLeft(b []byte, s string, width int) []byte {
	for range width - len(s) {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func padRight(b []byte, s string, width int) []byte {
	b = append(b, s...)
	for range width - len(s) {
		b = append(b, ' ')
	}
	return b
}
