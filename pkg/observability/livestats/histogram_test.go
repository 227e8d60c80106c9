package livestats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketLayout(t *testing.T) {
	if lo, _ := bucketBounds(0); lo != 0 {
		t.Fatalf("bucket 0 starts at %v, want 0", lo)
	}
	for i := range numBuckets {
		lo, hi := bucketBounds(i)
		if got := bucketOf(lo); got != i {
			t.Errorf("bucketOf(%d ns) = %d, want %d (the bucket's lower bound)", lo, got, i)
		}
		if got := bucketOf(hi - 1); got != i {
			t.Errorf("bucketOf(%d ns) = %d, want %d (the bucket's last value)", hi-1, got, i)
		}
		if i+1 < numBuckets {
			if next, _ := bucketBounds(i + 1); next != hi {
				t.Errorf("bucket %d ends at %d ns, bucket %d starts at %d ns", i, hi, i+1, next)
			}
		}
		if i >= linearUnits && (hi-lo)*16 > lo {
			t.Errorf("bucket %d [%d, %d) is wider than 1/16 of its lower bound", i, lo, hi)
		}
		if i < linearUnits && hi-lo != 32 {
			t.Errorf("linear bucket %d is %d ns wide, want 32", i, hi-lo)
		}
	}
	if lo, _ := bucketBounds(overflowIdx); lo != overflowNanos {
		t.Errorf("overflow bucket starts at %v, want %v", lo, overflowNanos)
	}
	if overflowNanos < 10*time.Minute {
		t.Errorf("range ends at %v, below 10 minutes", overflowNanos)
	}
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{-time.Hour, 0}, {math.MinInt64, 0}, {0, 0}, {31, 0}, {32, 1}, {1023, 31}, {1024, 32},
		{overflowNanos - 1, overflowIdx - 1}, {overflowNanos, overflowIdx}, {time.Hour, overflowIdx},
		{math.MaxInt64, overflowIdx},
	} {
		if got := bucketOf(c.d); got != c.want {
			t.Errorf("bucketOf(%d) = %d, want %d", c.d, got, c.want)
		}
	}
}

// withinBound reports whether got is the reported value of a percentile
// whose exact value is exact, within histogram.go's stated error bound.
func withinBound(got, exact time.Duration) bool {
	exact = max(exact, 0)
	switch {
	case exact >= overflowNanos:
		return got == overflowNanos
	case exact >= time.Microsecond:
		return math.Abs(float64(got-exact)) <= float64(exact)/32
	default:
		return math.Abs(float64(got-exact)) <= 32
	}
}

// TestBucketValueBound checks the bound at both ends of every bucket, where
// it is tightest.
func TestBucketValueBound(t *testing.T) {
	for i := range numBuckets {
		lo, hi := bucketBounds(i)
		for _, x := range []time.Duration{lo, hi - 1} {
			if !withinBound(bucketValue(i), x) {
				t.Errorf("bucket %d reports %d ns for %d ns: outside the bound", i, bucketValue(i), x)
			}
		}
	}
}

func TestPercentileAgainstExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func(n int, f func(i int) time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	cases := []struct {
		name   string
		values []time.Duration
	}{
		{"uniform 1µs-2s", gen(20000, func(int) time.Duration {
			return time.Microsecond + time.Duration(rng.Int64N(int64(2*time.Second)))
		})},
		{"exponential mean 5ms", gen(20000, func(int) time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
		})},
		{"bimodal 2ms and 800ms", gen(20000, func(int) time.Duration {
			if rng.IntN(10) == 0 {
				return 800*time.Millisecond + time.Duration(rng.NormFloat64()*float64(50*time.Millisecond))
			}
			return 2*time.Millisecond + time.Duration(rng.NormFloat64()*float64(200*time.Microsecond))
		})},
		{"log-uniform 100ns-15min", gen(20000, func(int) time.Duration {
			return time.Duration(math.Exp(rng.Float64()*math.Log(9e12/100)) * 100)
		})},
		{"single value", []time.Duration{1234567 * time.Nanosecond}},
		{"one value many times", gen(1000, func(int) time.Duration { return 42 * time.Millisecond })},
		{"geometric, distinct buckets (rank rounding)", gen(10, func(i int) time.Duration { return time.Millisecond << i })},
		{"geometric 1000", gen(1000, func(i int) time.Duration {
			return time.Duration(float64(time.Microsecond) * math.Pow(1.02, float64(i)))
		})},
		{"three values", []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}},
		{"underflow and negative", gen(500, func(i int) time.Duration { return time.Duration(i%64 - 32) })},
		{"overflow", gen(500, func(i int) time.Duration { return 20*time.Minute + time.Duration(i)*time.Minute })},
		{"half overflow", gen(1000, func(i int) time.Duration {
			if i%2 == 0 {
				return 2 * time.Hour
			}
			return 10 * time.Millisecond
		})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h [numBuckets]uint64
			for _, v := range c.values {
				h[bucketOf(v)]++
			}
			sorted := slices.Clone(c.values)
			slices.Sort(sorted)
			n := uint64(len(sorted))
			for _, q := range []uint64{500, 900, 990, 999, 1000, 1} {
				rank := int(math.Ceil(float64(n) * float64(q) / 1000))
				exact := sorted[max(rank, 1)-1]
				got := percentile(&h, n, q)
				if !withinBound(got, exact) {
					t.Errorf("p%g = %v, exact nearest-rank %v: outside the bound", float64(q)/10, got, exact)
				}
			}
		})
	}
}

func TestPercentileEmpty(t *testing.T) {
	var h [numBuckets]uint64
	for _, q := range []uint64{500, 999} {
		if got := percentile(&h, 0, q); got != 0 {
			t.Errorf("empty p%d = %v, want 0", q, got)
		}
	}
	l := latencyOf(&h)
	if l != (Latency{}) {
		t.Errorf("empty latency = %+v, want zeros", l)
	}
}
