package livestats

import (
	"math"
	"time"
)

// ringSpec describes one ring: its window's name and its slots.
type ringSpec struct {
	name  string
	slot  time.Duration // length of one slot: a multiple of 1 s
	slots int           // the window's length is slot × slots
}

// rings are the three windows, finest first; Snapshot reports them in this
// order.
var rings = [numRings]ringSpec{
	{name: "10s", slot: time.Second, slots: 10},
	{name: "1m", slot: 10 * time.Second, slots: 6},
	{name: "10m", slot: time.Minute, slots: 10},
}

const numRings = 3

// numSlots is the number of slots of all rings.
var numSlots = func() (n int) {
	for _, spec := range rings {
		n += spec.slots
	}
	return n
}()

// slot is one ring slot: the samples of one period of the ring's slot
// length (period number stamp), folded in from the closed live slots whose
// ticks fall in it. Counts saturate at 2^32-1 (4.29e9 requests in one
// slot, 71 million per second over a minute: never in practice).
type slot struct {
	stamp int64         // period number (tick / slot seconds); -1: never used
	open  time.Duration // since start: when the first slot folded in opened
	cells [numCells]uint32
}

// ring holds the last slots of one window, the slot of period p at p % n.
type ring struct {
	per   int64 // ticks per slot
	n     int64
	slots []slot // len n, a part of one allocation for all rings
}

// rotation is the state Rotate changes and Snapshot reads, under
// Recorder.mu.
type rotation struct {
	liveTick int64         // stamp (tick) of the live slot
	liveOpen time.Duration // since start: when the live slot opened
	prev     [numCells]uint64
	delta    [numCells]uint64 // scratch: the live slot's counts
	merged   [numCells]uint64 // scratch: one window's counts (Snapshot)
	rings    [numRings]ring
}

func (rt *rotation) init() {
	all := make([]slot, numSlots)
	for i := range all {
		all[i].stamp = -1
	}
	for i, spec := range rings {
		g := &rt.rings[i]
		g.per = int64(spec.slot / time.Second)
		g.n = int64(spec.slots)
		g.slots, all = all[:spec.slots:spec.slots], all[spec.slots:]
	}
}

// Rotate closes the live slot and opens a new one if now is in a later
// whole second (since start) than the live slot's opening; otherwise it
// does nothing. The caller calls it about once per second; it may be late,
// early, or repeated (see Recorder for what lateness does to windows). It
// costs a pass over the counters of every shard (about 4 µs with two
// shards, BenchmarkRotate) and does not allocate.
func (r *Recorder) Rotate(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.sinceStart(now)
	tick := int64(d / time.Second)
	rt := &r.rot
	if tick <= rt.liveTick {
		return
	}
	r.readLive(true)
	for i := range rt.rings {
		rt.rings[i].fold(rt.liveTick, rt.liveOpen, &rt.delta)
	}
	rt.liveTick, rt.liveOpen = tick, d
}

// readLive sets rot.delta to the counts of the live slot: the cumulative
// counters' increase since the last close. With closing, that increase is
// taken as closed (prev moves up to the counters read).
func (r *Recorder) readLive(closing bool) {
	rt := &r.rot
	for i := range rt.delta {
		var sum uint64
		for s := range r.shards {
			sum += r.shards[s].cells[i].Load()
		}
		rt.delta[i] = sum - rt.prev[i]
		if closing {
			rt.prev[i] = sum
		}
	}
}

// fold adds the counts of the closed live slot (tick, opened at open) to
// the ring's slot for its period, clearing that slot first if it holds an
// older period.
func (g *ring) fold(tick int64, open time.Duration, delta *[numCells]uint64) {
	p := tick / g.per
	s := &g.slots[p%g.n]
	if s.stamp != p {
		s.stamp, s.open = p, open
		clear(s.cells[:])
	}
	for i, d := range delta {
		if d == 0 {
			continue
		}
		s.cells[i] = uint32(min(uint64(s.cells[i])+d, math.MaxUint32))
	}
}

// window sums into rot.merged the ring's slots that are in the window
// ending at tick now, and the live slot (rot.delta, read by the caller)
// when it is in it. It returns the opening of the oldest slot summed, and
// false when none was.
func (rt *rotation) window(g *ring, now int64) (oldest time.Duration, ok bool) {
	clear(rt.merged[:])
	last := now / g.per
	first := last - g.n + 1
	add := func(open time.Duration) {
		if !ok || open < oldest {
			oldest = open
		}
		ok = true
	}
	for i := range g.slots {
		s := &g.slots[i]
		if s.stamp < first || s.stamp > last {
			continue
		}
		for j, c := range s.cells {
			rt.merged[j] += uint64(c)
		}
		add(s.open)
	}
	if p := rt.liveTick / g.per; p >= first && p <= last {
		for j, c := range rt.delta {
			rt.merged[j] += c
		}
		add(rt.liveOpen)
	}
	return oldest, ok
}
