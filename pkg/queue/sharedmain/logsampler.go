package sharedmain

import (
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
)

// logSampleTick is the window in which a message's entries are counted, as
// zap's sampler counts them for zap.Config.Build.
const logSampleTick = time.Second

// logSampleBuckets is how many counters each level's messages share: a
// message's counter is picked by the FNV-1a hash of its text modulo this,
// as in zap's sampler, so two messages that collide are counted together
// there and here alike.
const logSampleBuckets = 4096

// logSampler is zap's sampling (zap.SamplingConfig: in each tick, the
// first entries with a given level and message, then every thereafter-th)
// with counters made when first needed instead of zap's fixed table: zap
// allocates 7 × 4,096 counters (448 KiB) per sampled logger, which the
// garbage collector counts as live heap and doubles into the heap's target
// under load, while the queue-proxy logs a handful of distinct messages.
//
// Entries are counted by their Time, as zap counts them. The counters sit
// behind one mutex: the queue-proxy logs on no per-request path. Counters
// whose tick ended are dropped once they are many, so a stream of distinct
// messages does not grow the table forever.
type logSampler struct {
	zapcore.Core
	state *logSampleState
}

type logSampleState struct {
	first, thereafter uint64

	mu     sync.Mutex
	counts map[logSampleKey]*logSampleCount
	sweep  int // table size that triggers the next sweep of ended counters
}

type logSampleKey struct {
	level  zapcore.Level
	bucket uint32
}

type logSampleCount struct {
	n       uint64
	resetAt int64 // UnixNano at which the count starts again
}

// logSampleSweepMin is the table size below which ended counters are kept.
const logSampleSweepMin = 64

// newLogSampler wraps core with sampling of first, then every
// thereafter-th (none after the first when thereafter is 0), per tick.
func newLogSampler(core zapcore.Core, first, thereafter int) zapcore.Core {
	return &logSampler{Core: core, state: &logSampleState{
		first:      uint64(max(first, 0)),
		thereafter: uint64(max(thereafter, 0)),
		counts:     map[logSampleKey]*logSampleCount{},
		sweep:      logSampleSweepMin,
	}}
}

// With keeps the counters: a child logger's entries count with its
// parent's.
func (s *logSampler) With(fields []zapcore.Field) zapcore.Core {
	return &logSampler{Core: s.Core.With(fields), state: s.state}
}

// Level is the wrapped core's.
func (s *logSampler) Level() zapcore.Level { return zapcore.LevelOf(s.Core) }

// Check drops the entry when its count in the current tick is past first
// and not a multiple of thereafter past it; disabled levels are not counted.
func (s *logSampler) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !s.Enabled(ent.Level) {
		return ce
	}
	if ent.Level < zapcore.DebugLevel || ent.Level > zapcore.FatalLevel {
		return s.Core.Check(ent, ce) // zap samples the standard levels only
	}
	if n := s.state.count(ent); n > s.state.first && (s.state.thereafter == 0 || (n-s.state.first)%s.state.thereafter != 0) {
		return ce
	}
	return s.Core.Check(ent, ce)
}

// count adds ent to its counter and returns the count in the tick.
func (st *logSampleState) count(ent zapcore.Entry) uint64 {
	key := logSampleKey{ent.Level, logSampleHash(ent.Message) % logSampleBuckets}
	t := ent.Time.UnixNano()
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.counts[key]
	if c == nil {
		if len(st.counts) >= st.sweep {
			st.sweepLocked(t)
		}
		c = &logSampleCount{}
		st.counts[key] = c
	}
	if t >= c.resetAt {
		c.n, c.resetAt = 0, t+int64(logSampleTick)
	}
	c.n++
	return c.n
}

// sweepLocked drops the counters whose tick ended by t (a new entry for
// them would start from zero anyway) and sets the next sweep at twice the
// size left.
func (st *logSampleState) sweepLocked(t int64) {
	for k, c := range st.counts {
		if t >= c.resetAt {
			delete(st.counts, k)
		}
	}
	st.sweep = max(2*len(st.counts), logSampleSweepMin)
}

// logSampleHash is FNV-1a (32 bits) of s, without converting it to bytes.
func logSampleHash(s string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * prime
	}
	return h
}
