package spanbatch

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"k8s.io/utils/clock"
)

// Defaults of the OpenTelemetry Go SDK's batch span processor (v1.47.0).
const (
	DefaultMaxQueueSize       = 2048
	DefaultMaxExportBatchSize = 512
	DefaultScheduleDelay      = 5000 * time.Millisecond
	DefaultExportTimeout      = 30000 * time.Millisecond
)

// NoExportTimeout as Config.ExportTimeout lets an export run for as long as
// the exporter takes (OTEL_BSP_EXPORT_TIMEOUT=0).
const NoExportTimeout time.Duration = -1

// MaxQueueSizeLimit is the largest OTEL_BSP_MAX_QUEUE_SIZE we accept. The
// queue's slots are allocated up front (8 bytes each), so a typo must not
// become an out-of-memory crash of every pod.
const MaxQueueSizeLimit = 1 << 20

// The environment variables ConfigFromEnv reads, as the OpenTelemetry SDK
// spells them. Durations are integers in milliseconds.
const (
	EnvScheduleDelay      = "OTEL_BSP_SCHEDULE_DELAY"
	EnvExportTimeout      = "OTEL_BSP_EXPORT_TIMEOUT"
	EnvMaxQueueSize       = "OTEL_BSP_MAX_QUEUE_SIZE"
	EnvMaxExportBatchSize = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
)

// Config tunes a Processor. Zero values take the defaults above, so
// Config{} behaves like the SDK with no OTEL_BSP_* variables set.
type Config struct {
	// MaxQueueSize bounds the spans waiting for export; a span arriving at
	// a full queue is dropped. <= 0: DefaultMaxQueueSize.
	MaxQueueSize int
	// MaxExportBatchSize is the most spans one export carries; as soon as
	// that many are waiting, they are exported. <= 0:
	// DefaultMaxExportBatchSize. Larger than MaxQueueSize: capped as the
	// SDK caps it, to min(DefaultMaxExportBatchSize, MaxQueueSize).
	MaxExportBatchSize int
	// ScheduleDelay is the longest a span waits for a batch to fill; the
	// timer restarts after every export, as in the SDK. It is also the
	// least time between two OnDrop calls. <= 0: DefaultScheduleDelay.
	ScheduleDelay time.Duration
	// ExportTimeout bounds each export through its context's deadline
	// (wall-clock, so that exporters can pass it on). 0:
	// DefaultExportTimeout; NoExportTimeout (any negative value): no bound.
	ExportTimeout time.Duration
	// Clock drives ScheduleDelay and the spacing of OnDrop; nil: the real
	// clock.
	Clock clock.Clock
	// OnDrop, when set, is told how many spans were dropped since its last
	// call and in total. A goroutine of the Processor's own calls it,
	// independently of the exports (a hung export does not delay it),
	// never concurrently with itself, and only when the count grew: at
	// once when a span is dropped, unless the last call returned less than
	// ScheduleDelay ago; then once that ScheduleDelay has passed, for all
	// the drops since. A last call comes before Shutdown returns (see
	// Processor.Shutdown); spans dropped after that are only counted
	// (Dropped). OnDrop should return promptly, as Shutdown waits for it,
	// and must not call Shutdown.
	OnDrop func(dropped, total uint64)
}

// withDefaults returns c with zero and out-of-range values replaced as the
// field comments say.
func (c Config) withDefaults() Config {
	if c.MaxQueueSize <= 0 {
		c.MaxQueueSize = DefaultMaxQueueSize
	}
	if c.MaxExportBatchSize <= 0 {
		c.MaxExportBatchSize = DefaultMaxExportBatchSize
	}
	if c.MaxExportBatchSize > c.MaxQueueSize {
		c.MaxExportBatchSize = min(DefaultMaxExportBatchSize, c.MaxQueueSize)
	}
	if c.ScheduleDelay <= 0 {
		c.ScheduleDelay = DefaultScheduleDelay
	}
	switch {
	case c.ExportTimeout == 0:
		c.ExportTimeout = DefaultExportTimeout
	case c.ExportTimeout < 0:
		c.ExportTimeout = NoExportTimeout
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c
}

// ConfigFromEnv reads the OTEL_BSP_* variables through getenv (os.Getenv
// in production). An unset or empty variable takes the SDK's default, and a
// batch size above the queue size is capped as the SDK caps it.
//
// Where the SDK silently ignores a value that is not an integer (and
// accepts values that break it: a negative queue size panics, a zero delay
// spins), we refuse to start: the error names the variable and the value.
// Accepted: queue size 1..MaxQueueSizeLimit, batch size >= 1, schedule
// delay >= 1 ms, export timeout >= 0 ms where 0 means no timeout (as in the
// SDK, which treats any value <= 0 so).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		MaxQueueSize:       DefaultMaxQueueSize,
		MaxExportBatchSize: DefaultMaxExportBatchSize,
		ScheduleDelay:      DefaultScheduleDelay,
		ExportTimeout:      DefaultExportTimeout,
	}
	if err := envInt(getenv, EnvMaxQueueSize, 1, MaxQueueSizeLimit, &c.MaxQueueSize); err != nil {
		return Config{}, err
	}
	if err := envInt(getenv, EnvMaxExportBatchSize, 1, math.MaxInt, &c.MaxExportBatchSize); err != nil {
		return Config{}, err
	}
	if err := envMillis(getenv, EnvScheduleDelay, 1, &c.ScheduleDelay); err != nil {
		return Config{}, err
	}
	if err := envMillis(getenv, EnvExportTimeout, 0, &c.ExportTimeout); err != nil {
		return Config{}, err
	}
	if c.ExportTimeout == 0 {
		c.ExportTimeout = NoExportTimeout
	}
	return c.withDefaults(), nil
}

// envInt stores the variable key, a decimal integer in [lo, hi], in dst;
// it leaves dst alone when the variable is unset or empty.
func envInt(getenv func(string) string, key string, lo, hi int, dst *int) error {
	s := getenv(key)
	if s == "" {
		return nil
	}
	v, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s=%q: not an integer", key, s)
	case v < lo:
		return fmt.Errorf("%s=%q: must be at least %d", key, s, lo)
	case v > hi:
		return fmt.Errorf("%s=%q: must be at most %d", key, s, hi)
	}
	*dst = v
	return nil
}

// envMillis stores the variable key, a whole number of milliseconds (at
// least lo), in dst; it leaves dst alone when the variable is unset or
// empty.
func envMillis(getenv func(string) string, key string, lo int, dst *time.Duration) error {
	ms := -1 // stays so when unset: valid values are >= 0
	if err := envInt(getenv, key, lo, math.MaxInt64/int(time.Millisecond), &ms); err != nil {
		return err
	}
	if ms >= 0 {
		*dst = time.Duration(ms) * time.Millisecond
	}
	return nil
}
