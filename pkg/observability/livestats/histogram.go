package livestats

import (
	"math/bits"
	"time"
)

// Bucket layout of every latency histogram: log-linear ("HDR-style") over
// units of 32 ns.
//
// A duration d (negative counts as 0) is first divided by 32 ns: u = d>>5.
// Units 0..31 (0 to 1024 ns) have one bucket each, 32 ns wide. From there on
// every power of two [2^k, 2^(k+1)) units, k >= 5, is split into 16 buckets of
// equal width 2^(k-4) units, so a bucket is at most 1/16 of its lower bound
// wide. The index is e*16 + u>>e with e = max(0, bitlen(u)-5): contiguous,
// monotone, computed with one bit-length instruction and no loop.
//
// 512 buckets reach 32·2^35 ns; the last one is the overflow bucket, taking
// every value at or above overflowNanos = 31·2^35 ns (about 1065.15 s,
// 17 min 45 s), which is above the 10-minute range asked for with room for
// timeouts a little longer than Knative's default maximum.
//
// Reported value of a bucket (bucketValue): its midpoint, except bucket 0
// ([0, 32 ns), negative durations included), reported as 0 so that a queue
// that never waits shows 0, and the overflow bucket, reported as its lower
// bound overflowNanos ("at least this").
//
// Error bound: a percentile's reported value is the reported value of the
// bucket that holds the exact nearest-rank percentile x (see percentile),
// so for 1 µs <= x < overflowNanos it is within x/32 (3.125 %) of x (half
// a bucket of width <= lower bound/16); below 1 µs it is within 32 ns of x
// (16 ns, 32 ns in bucket 0); at or above overflowNanos it is overflowNanos.
//
// Why 512: 16 sub-buckets per power of two is what a 1/32 relative bound
// needs; 30 powers of two above the 1 µs linear part reach beyond 10
// minutes; and 512 counters of 4 bytes are 2 KiB per histogram in each ring
// slot, which keeps a Recorder under 300 KiB (see Recorder).
const (
	unitShift    = 5  // a unit is 1<<unitShift ns = 32 ns
	subBits      = 4  // 1<<subBits = 16 buckets per power of two
	linearUnits  = 32 // units below this have a bucket each
	numBuckets   = 512
	maxUnits     = 32<<30 - 1 // the largest unit count; above it, clamp
	overflowIdx  = numBuckets - 1
	overflowLow  = 31 << 30 // units: lower bound of the overflow bucket
	bucketMask   = numBuckets - 1
	perMilleBase = 1000
)

// overflowNanos is the lower bound of the overflow bucket: 31·2^35 ns.
const overflowNanos = time.Duration(overflowLow) << unitShift

// bucketOf returns the bucket that counts d.
func bucketOf(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	u := uint64(d) >> unitShift
	if u > maxUnits {
		u = maxUnits
	}
	e := bits.Len64(u|(linearUnits-1)) - (subBits + 1)
	return (e<<subBits + int(u>>e)) & bucketMask
}

// bucketBounds returns bucket i's range [lo, hi) in nanoseconds; the
// overflow bucket's hi is its nominal bound 32·2^35 ns although it takes
// everything above.
func bucketBounds(i int) (lo, hi time.Duration) {
	if i < linearUnits {
		return time.Duration(i) << unitShift, time.Duration(i+1) << unitShift
	}
	e := i>>subBits - 1
	m := uint64(i&(1<<subBits-1) + 1<<subBits)
	lo = time.Duration(m<<e) << unitShift
	return lo, lo + time.Duration(uint64(1)<<e)<<unitShift
}

// bucketValue is the value reported for a percentile that falls in bucket
// i (see the layout above).
func bucketValue(i int) time.Duration {
	switch i {
	case 0:
		return 0
	case overflowIdx:
		return overflowNanos
	}
	lo, hi := bucketBounds(i)
	return lo + (hi-lo)/2
}

// percentile returns the nearest-rank percentile q/1000 (0 < q <= 1000) of
// the n values counted in counts: the reported value of the first bucket at
// which the cumulative count reaches rank ceil(n·q/1000). With n == 0 it
// returns 0.
func percentile(counts *[numBuckets]uint64, n uint64, q uint64) time.Duration {
	if n == 0 {
		return 0
	}
	rank := (n*q + perMilleBase - 1) / perMilleBase
	if rank == 0 {
		rank = 1
	}
	var cum uint64
	for i, c := range counts {
		cum += c
		if cum >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(overflowIdx) // counts summed to less than n: the caller's n was wrong
}
