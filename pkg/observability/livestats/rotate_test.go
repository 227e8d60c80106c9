package livestats

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus sec seconds.
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// step is one action of a window script: record n samples, rotate at a
// time, or take a snapshot at a time and check the windows (10s, 1m, 10m).
type step struct {
	record  int
	rotate  float64 // seconds after t0; NaN: none
	snap    float64 // seconds after t0; NaN: none
	want    [numRings]uint64
	covered *[numRings]float64 // seconds; nil: not checked
}

var none = math.NaN()

func rec(n int) step       { return step{record: n, rotate: none, snap: none} }
func rot(sec float64) step { return step{rotate: sec, snap: none} }
func rots(from, to float64) []step {
	var s []step
	for t := from; t <= to; t++ {
		s = append(s, rot(t))
	}
	return s
}
func snap(sec float64, want ...uint64) step {
	return step{rotate: none, snap: sec, want: [numRings]uint64(want)}
}
func snapCovered(sec float64, want [numRings]uint64, covered [numRings]float64) step {
	return step{rotate: none, snap: sec, want: want, covered: &covered}
}

func script(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		}
	}
	return out
}

func TestWindows(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{{
		name: "a sample leaves 10s, then 1m, then 10m",
		steps: script(rec(5), rots(1, 9), snap(9.9, 5, 5, 5), rot(10), snap(10, 0, 5, 5),
			rots(11, 59), snap(59.9, 0, 5, 5), rot(60), snap(60, 0, 0, 5),
			rots(61, 599), snap(599.9, 0, 0, 5), rot(600), snap(600, 0, 0, 0)),
	}, {
		name:  "ticker phase 0.7 s: the slot opened at 3.7 leaves 10s at 13",
		steps: script(rots(1.7, 3.7), rec(2), rots(4.7, 12.7), snap(12.9, 2, 2, 2), snap(13, 0, 2, 2)),
	}, {
		name: "several samples in different seconds",
		steps: script(rec(1), rot(1), rec(2), rot(2), rec(4), rots(3, 10), snap(10.5, 6, 7, 7),
			rot(11), snap(11.5, 4, 7, 7), rot(12), snap(12.5, 0, 7, 7)),
	}, {
		name: "rotate twice in a second, and before the first second: the slot opened at 1.2 leaves 10s at 11",
		steps: script(rot(0.5), rec(3), rot(1.2), rec(1), rot(1.8), snap(1.9, 4, 4, 4),
			rots(2, 10), snap(10.5, 1, 4, 4), rot(11), snap(11.5, 0, 4, 4)),
	}, {
		name: "young process: rate over the uptime",
		steps: script(rec(30), rots(1, 3),
			snapCovered(3, [3]uint64{30, 30, 30}, [3]float64{3, 3, 3})),
	}, {
		name: "steady state at phase 0.25 s: covered between length-slot-1s and length",
		steps: script(rots(0.25, 700.25), rec(10),
			snapCovered(700.5, [3]uint64{10, 10, 10}, [3]float64{9.25, 50.25, 580.25}),
			// The next rotation is due at 701.25: the oldest 10s slot is 692.
			snapCovered(701.1, [3]uint64{10, 10, 10}, [3]float64{8.85, 50.85, 580.85})),
	}, {
		name: "late ticker: the gap's samples belong to the slot opened before it",
		steps: script(rot(1), rec(3), rot(2), rec(4), rot(25), rec(5),
			snapCovered(25.5, [3]uint64{5, 12, 12}, [3]float64{0.5, 25.5, 25.5}),
			rots(26, 34), snap(34.5, 5, 12, 12), rot(35), snap(35.5, 0, 12, 12)),
	}, {
		name: "a jump clears the skipped slots",
		steps: script(
			rec(1), rot(1), rec(2), rot(2), rec(3), rot(3), rec(4), rot(4), rec(5), rot(5),
			rec(6), rot(6), rec(7), rot(7), rec(8), rot(8), rec(9), rot(9), rec(10), rot(10),
			rec(100), rot(13), // closes second 10; 11 and 12 are skipped, their ring places hold 1 and 2
			snapCovered(13.5, [3]uint64{145, 155, 155}, [3]float64{9.5, 13.5, 13.5}),
			rots(14, 19), snap(19.5, 100, 155, 155), rot(20), snap(20.5, 0, 155, 155),
			rec(1000), rot(21), snap(21.5, 1000, 1155, 1155),
			rots(22, 59), snap(59.5, 0, 1155, 1155), rot(60), snap(60, 0, 1100, 1155)),
	}, {
		name: "a jump longer than every window",
		steps: script(rec(7), rots(1, 30), rec(8), rot(5000), rec(9),
			snapCovered(5000.5, [3]uint64{9, 9, 9}, [3]float64{0.5, 0.5, 0.5}),
			rot(5001), snap(5001.5, 9, 9, 9)),
	}, {
		name: "time going backwards rotates nothing and is taken as the last rotation",
		steps: script(rots(1, 20), rec(5), rot(5), rec(6),
			snapCovered(5, [3]uint64{11, 11, 11}, [3]float64{9, 20, 20}),
			snapCovered(-100, [3]uint64{11, 11, 11}, [3]float64{9, 20, 20}),
			rot(21), rec(1), snap(21, 12, 12, 12), rots(22, 30), snap(30.5, 1, 12, 12), rot(31), snap(31, 0, 12, 12)),
	}, {
		name: "no rotation for a while: the live slot ages out of the windows",
		steps: script(rec(4),
			snapCovered(5, [3]uint64{4, 4, 4}, [3]float64{5, 5, 5}),
			snapCovered(100, [3]uint64{0, 0, 4}, [3]float64{0, 0, 100}),
			snap(600, 0, 0, 0)),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRecorder(t0, 2)
			for i, s := range c.steps {
				for range s.record {
					r.Record(Sample{Total: time.Millisecond, Admitted: true})
				}
				if !math.IsNaN(s.rotate) {
					r.Rotate(at(s.rotate))
				}
				if math.IsNaN(s.snap) {
					continue
				}
				snap := r.Snapshot(at(s.snap))
				for w := range numRings {
					win := snap.Windows[w]
					if win.Requests != s.want[w] || win.Total.Count != s.want[w] {
						t.Errorf("step %d, snapshot at %gs: window %s has %d requests (%d latencies), want %d",
							i, s.snap, win.Name, win.Requests, win.Total.Count, s.want[w])
					}
					if s.covered == nil {
						continue
					}
					if math.Abs(win.CoveredSeconds-s.covered[w]) > 1e-9 {
						t.Errorf("step %d, snapshot at %gs: window %s covers %gs, want %gs",
							i, s.snap, win.Name, win.CoveredSeconds, s.covered[w])
					}
					wantRate := 0.0
					if s.covered[w] > 0 {
						wantRate = float64(s.want[w]) / s.covered[w]
					}
					if math.Abs(win.RatePerSecond-wantRate) > 1e-9 {
						t.Errorf("step %d, snapshot at %gs: window %s rate %g/s, want %g/s",
							i, s.snap, win.Name, win.RatePerSecond, wantRate)
					}
				}
			}
		})
	}
}

// TestCoveredBounds checks the steady-state bound stated on Recorder at
// every tenth of a second for 11 minutes of a ticker at phase 0.6 s.
func TestCoveredBounds(t *testing.T) {
	r := newRecorder(t0, 1)
	next := 0.6
	for ds := 0; ds <= 6600; ds++ {
		now := float64(ds) / 10
		if now >= next {
			r.Rotate(at(next))
			next++
		}
		s := r.Snapshot(at(now))
		for i, w := range s.Windows {
			slot := rings[i].slot.Seconds()
			lo := min(w.LengthSeconds-slot-1, now)
			if w.CoveredSeconds < lo-1e-6 || w.CoveredSeconds > w.LengthSeconds+1e-9 {
				t.Fatalf("at %.1fs window %s covers %gs, want in (%g, %g]", now, w.Name, w.CoveredSeconds, lo, w.LengthSeconds)
			}
		}
	}
}

// TestMonotonicTime uses times from time.Now (with monotonic readings).
func TestMonotonicTime(t *testing.T) {
	start := time.Now()
	r := New(start)
	r.Record(Sample{Outcome: Timeout})
	r.Rotate(start.Add(1500 * time.Millisecond))
	s := r.Snapshot(start.Add(11 * time.Second))
	if got := [3]uint64{s.Windows[0].Timeouts, s.Windows[1].Timeouts, s.Windows[2].Timeouts}; got != [3]uint64{0, 1, 1} {
		t.Errorf("timeouts per window = %v, want [0 1 1]", got)
	}
	if s.UptimeSeconds != 11 {
		t.Errorf("uptime = %g, want 11", s.UptimeSeconds)
	}
}
