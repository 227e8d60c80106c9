package sharedmain

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogSamplerMatchesZap: the same entries through zap's sampler and
// through logSampler are kept or dropped alike, for several policies, with
// child cores (With) sharing their parent's counts, ticks ending, a
// disabled level, a non-standard level, and more distinct messages than
// the sweep's threshold.
func TestLogSamplerMatchesZap(t *testing.T) {
	policies := []struct{ first, thereafter int }{{100, 100}, {3, 2}, {2, 0}, {0, 3}, {1, 5}}
	for _, pol := range policies {
		t.Run(fmt.Sprintf("%d_%d", pol.first, pol.thereafter), func(t *testing.T) {
			zapObs, zapLogs := observer.New(zapcore.InfoLevel)
			ourObs, ourLogs := observer.New(zapcore.InfoLevel)
			zapRoot := zapcore.NewSamplerWithOptions(zapObs, logSampleTick, pol.first, pol.thereafter)
			ourRoot := newLogSampler(ourObs, pol.first, pol.thereafter)
			zapCores := []zapcore.Core{zapRoot, zapRoot.With([]zapcore.Field{{Key: "k", Type: zapcore.StringType, String: "v"}})}
			ourCores := []zapcore.Core{ourRoot, ourRoot.With([]zapcore.Field{{Key: "k", Type: zapcore.StringType, String: "v"}})}

			rng := rand.New(rand.NewPCG(1, uint64(pol.first*1000+pol.thereafter)))
			levels := []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel, zapcore.Level(-3), zapcore.Level(9)}
			start := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
			now := start
			// The distinct counted keys of the trickle in each 2 s window
			// [k s, k+2 s): any tick lies in one. After the burst's counters
			// ended, the sweeps keep the table within twice that.
			windows := map[int64]map[logSampleKey]bool{}
			enabled := 0
			for i := range 20000 {
				step := 400 * time.Microsecond // a burst, then 20 s of a trickle
				if i >= 10000 {
					step = 4 * time.Millisecond
				}
				now = now.Add(time.Duration(rng.Int64N(int64(step))))
				msg := fmt.Sprintf("message %d", rng.IntN(8))
				if rng.IntN(10) == 0 {
					msg = fmt.Sprintf("distinct %d", i) // many one-off messages
				}
				ent := zapcore.Entry{Level: levels[rng.IntN(len(levels))], Time: now, Message: msg}
				if ent.Level >= zapcore.InfoLevel {
					enabled++
				}
				if i >= 10000 && ent.Level >= zapcore.InfoLevel && ent.Level <= zapcore.FatalLevel {
					key := logSampleKey{ent.Level, logSampleHash(msg) % logSampleBuckets}
					sec := int64(now.Sub(start) / time.Second)
					for _, k := range []int64{sec, sec - 1} {
						if windows[k] == nil {
							windows[k] = map[logSampleKey]bool{}
						}
						windows[k][key] = true
					}
				}
				which := rng.IntN(2)
				for _, c := range []zapcore.Core{zapCores[which], ourCores[which]} {
					if ce := c.Check(ent, nil); ce != nil {
						ce.Write()
					}
				}
			}
			zapAll, ourAll := zapLogs.AllUntimed(), ourLogs.AllUntimed()
			if len(zapAll) != len(ourAll) {
				t.Fatalf("kept %d entries, zap kept %d", len(ourAll), len(zapAll))
			}
			for i := range zapAll {
				z, o := zapAll[i], ourAll[i]
				if z.Message != o.Message || z.Level != o.Level || len(z.Context) != len(o.Context) {
					t.Fatalf("entry %d: kept %v %q (%d fields), zap kept %v %q (%d fields)", i, o.Level, o.Message, len(o.Context), z.Level, z.Message, len(z.Context))
				}
			}
			if len(zapAll) == 0 || len(zapAll) == enabled {
				t.Fatalf("zap kept %d of %d enabled entries: the sequence tests no sampling", len(zapAll), enabled)
			}
			maxWindow := 0
			for _, w := range windows {
				maxWindow = max(maxWindow, len(w))
			}
			st := ourRoot.(*logSampler).state
			if n := len(st.counts); n > 2*maxWindow+logSampleSweepMin {
				t.Errorf("%d counters kept after the sequence, want at most %d: ended ones swept", n, 2*maxWindow+logSampleSweepMin)
			}
		})
	}
}

// TestLogSamplerMemory: the queue-proxy's logger, sampled as Knative's is,
// costs a few KiB, not zap's 448 KiB table.
func TestLogSamplerMemory(t *testing.T) {
	// The least of three builds: another goroutine's allocations can only
	// add to one measurement.
	least := uint64(1 << 62)
	for range 3 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		logger, warnings := newLogger("", "info", Env{})
		runtime.ReadMemStats(&after)
		if len(warnings) != 0 {
			t.Fatal(warnings)
		}
		least = min(least, after.TotalAlloc-before.TotalAlloc)
		runtime.KeepAlive(logger)
	}
	if least > 64<<10 {
		t.Errorf("building the logger allocated %d bytes, want < 64 KiB", least)
	}
}
