package livestats

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// filledSnapshot is a Snapshot of a recorder that has seen 100 requests per
// second for 15 s, with the gauges set as the caller would.
func filledSnapshot() Snapshot {
	r := newRecorder(t0, 2)
	for sec := range 15 {
		for i := range 100 {
			o := OK
			if i == 0 {
				o = Timeout
			}
			d := time.Duration(i+1) * time.Millisecond
			r.Record(Sample{Total: d, QueueWait: d / 10, Upstream: d - d/10, Admitted: true, Outcome: o})
		}
		r.Rotate(at(float64(sec + 1)))
	}
	s := r.Snapshot(at(15.5))
	s.InFlight, s.Queued = 7, 2
	return s
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	return slices.Sorted(maps.Keys(m))
}

func TestSnapshotJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		snap Snapshot
	}{
		{"filled", filledSnapshot()},
		{"empty", New(t0).Snapshot(t0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.snap) // fails on NaN or infinity
			if err != nil {
				t.Fatal(err)
			}
			var tree map[string]any
			if err := json.Unmarshal(b, &tree); err != nil {
				t.Fatal(err)
			}
			wantTop := []string{"inFlight", "queued", "time", "uptimeSeconds", "windows"}
			wantWindow := []string{"admitted", "coveredSeconds", "lengthSeconds", "name", "ok", "otherErrors",
				"queueFull", "queueWait", "ratePerSecond", "requests", "timeouts", "total", "upstreamErrors", "userContainer"}
			wantLatency := []string{"count", "p50Ms", "p90Ms", "p999Ms", "p99Ms"}
			if got := keys(tree); !slices.Equal(got, wantTop) {
				t.Errorf("top-level fields %v, want %v", got, wantTop)
			}
			windows, _ := tree["windows"].([]any)
			if len(windows) != 3 {
				t.Fatalf("%d windows, want 3", len(windows))
			}
			for i, w := range windows {
				if got := keys(w); !slices.Equal(got, wantWindow) {
					t.Errorf("window %d fields %v, want %v", i, got, wantWindow)
				}
				for _, l := range []string{"total", "queueWait", "userContainer"} {
					if got := keys(w.(map[string]any)[l]); !slices.Equal(got, wantLatency) {
						t.Errorf("window %d %s fields %v, want %v", i, l, got, wantLatency)
					}
				}
			}
			if got := []any{windows[0].(map[string]any)["name"], windows[1].(map[string]any)["name"], windows[2].(map[string]any)["name"]}; !reflect.DeepEqual(got, []any{"10s", "1m", "10m"}) {
				t.Errorf("window names %v, want [10s 1m 10m]", got)
			}

			var back Snapshot
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !back.Time.Equal(c.snap.Time) {
				t.Errorf("time %v came back as %v", c.snap.Time, back.Time)
			}
			back.Time = c.snap.Time
			if !reflect.DeepEqual(back, c.snap) {
				t.Errorf("round trip changed the snapshot:\n got %+v\nwant %+v", back, c.snap)
			}
		})
	}
}

// TestSnapshotValues checks the filled snapshot's figures: the 10s window
// holds seconds 6-15 (the 1 s slots stamped 6..14 and the live one), the
// others all 15 s.
func TestSnapshotValues(t *testing.T) {
	s := filledSnapshot()
	if s.InFlight != 7 || s.Queued != 2 || s.UptimeSeconds != 15.5 {
		t.Errorf("gauges and uptime = %d, %d, %g; want 7, 2, 15.5", s.InFlight, s.Queued, s.UptimeSeconds)
	}
	for i, want := range []struct {
		requests uint64
		covered  float64
	}{{900, 9.5}, {1500, 15.5}, {1500, 15.5}} {
		w := s.Windows[i]
		if w.Requests != want.requests || w.Timeouts != want.requests/100 || w.OK != want.requests-want.requests/100 ||
			w.Admitted != want.requests {
			t.Errorf("window %s: %d requests, %d timeouts, %d ok, %d admitted; want %d requests, 1%% timeouts, all admitted",
				w.Name, w.Requests, w.Timeouts, w.OK, w.Admitted, want.requests)
		}
		if w.CoveredSeconds != want.covered || w.RatePerSecond != float64(want.requests)/want.covered {
			t.Errorf("window %s covers %gs at %g/s, want %gs at %g/s", w.Name, w.CoveredSeconds, w.RatePerSecond,
				want.covered, float64(want.requests)/want.covered)
		}
		// Every second holds 1..100 ms once: nearest-rank p50 = 50 ms,
		// p90 = 90, p99 = 99, p99.9 = 100.
		for _, p := range []struct {
			name      string
			got, want float64
		}{
			{"total p50", w.Total.P50Ms, 50}, {"total p90", w.Total.P90Ms, 90}, {"total p99", w.Total.P99Ms, 99},
			{"total p99.9", w.Total.P999Ms, 100}, {"queue wait p50", w.QueueWait.P50Ms, 5},
			{"user container p99", w.UserContainer.P99Ms, 99 - 9.9},
		} {
			checkMs(t, w.Name+" "+p.name, p.got, p.want)
		}
		// The exact value reported: the bucket's midpoint, in ms.
		if want := float64(bucketValue(bucketOf(50*time.Millisecond))) / 1e6; w.Total.P50Ms != want {
			t.Errorf("window %s total p50 = %v ms, want the bucket midpoint %v ms", w.Name, w.Total.P50Ms, want)
		}
	}
}

func TestWriteTextGolden(t *testing.T) {
	s := Snapshot{
		Time: t0, UptimeSeconds: 75.25, InFlight: 3, Queued: 1,
		Windows: []Window{{
			Name: "10s", LengthSeconds: 10, CoveredSeconds: 9.25, Requests: 1234, RatePerSecond: 133.4054,
			Admitted: 1230, OK: 1200, QueueFull: 4, Timeouts: 2, UpstreamErrors: 1, OtherErrors: 27,
			Total:         Latency{Count: 1234, P50Ms: 1.0085, P90Ms: 5.6, P99Ms: 12.345678, P999Ms: 1065151.889408},
			QueueWait:     Latency{Count: 1230},
			UserContainer: Latency{Count: 1230, P50Ms: 0.9, P90Ms: 5, P99Ms: 12, P999Ms: 99.999},
		}, {Name: "1m", LengthSeconds: 60}},
	}
	want := `live stats at 2025-01-02T03:04:05Z, uptime 75.2 s
in flight 3, queued 1

window 10s (covered 9.2 s)
  requests 1234 (133.41/s), admitted 1230
  ok 1200, queue full 4, timeouts 2, upstream errors 1, other errors 27
  latency (ms)         count         p50         p90         p99       p99.9
  total                 1234       1.008       5.600      12.346 1065151.889
  queue wait            1230       0.000       0.000       0.000       0.000
  user container        1230       0.900       5.000      12.000      99.999

window 1m (covered 0.0 s)
  requests 0 (0.00/s), admitted 0
  ok 0, queue full 0, timeouts 0, upstream errors 0, other errors 0
  latency (ms)         count         p50         p90         p99       p99.9
  total                    0       0.000       0.000       0.000       0.000
  queue wait               0       0.000       0.000       0.000       0.000
  user container           0       0.000       0.000       0.000       0.000
`
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestWriteTextFromRecorder checks the structure of a real snapshot's text:
// a block per window, each latency row with a count and four numbers of
// three decimals.
func TestWriteTextFromRecorder(t *testing.T) {
	var b bytes.Buffer
	if err := filledSnapshot().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	if strings.Contains(text, "NaN") || strings.Contains(text, "Inf") {
		t.Errorf("text holds NaN or Inf:\n%s", text)
	}
	for _, name := range []string{"10s", "1m", "10m"} {
		if !strings.Contains(text, "\nwindow "+name+" (covered ") {
			t.Errorf("no block for window %s:\n%s", name, text)
		}
	}
	rows := 0
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		label := strings.Join(f[:max(len(f)-5, 0)], " ")
		if label != "total" && label != "queue wait" && label != "user container" {
			continue
		}
		rows++
		if _, err := strconv.ParseUint(f[len(f)-5], 10, 64); err != nil {
			t.Errorf("row %q: count %q is not an integer", line, f[len(f)-5])
		}
		for _, v := range f[len(f)-4:] {
			if i := strings.IndexByte(v, '.'); i < 0 || len(v)-i-1 != 3 {
				t.Errorf("row %q: %q does not have three decimals", line, v)
			}
		}
	}
	if rows != 9 {
		t.Errorf("%d latency rows, want 9:\n%s", rows, text)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteTextError(t *testing.T) {
	if err := filledSnapshot().WriteText(failingWriter{}); err == nil || err.Error() != "broken pipe" {
		t.Errorf("WriteText to a failing writer returned %v, want its error", err)
	}
}
