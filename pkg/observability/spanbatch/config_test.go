package spanbatch

import (
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// sdkDefaults is the configuration with no OTEL_BSP_* variable set.
var sdkDefaults = Config{
	MaxQueueSize:       2048,
	MaxExportBatchSize: 512,
	ScheduleDelay:      5 * time.Second,
	ExportTimeout:      30 * time.Second,
	Clock:              clock.RealClock{},
}

// with returns sdkDefaults changed by f.
func with(f func(*Config)) Config {
	c := sdkDefaults
	f(&c)
	return c
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string // the error names the variable and its value
	}{{
		name: "unset",
		want: sdkDefaults,
	}, {
		name: "empty is unset",
		env:  map[string]string{EnvMaxQueueSize: "", EnvMaxExportBatchSize: "", EnvScheduleDelay: "", EnvExportTimeout: ""},
		want: sdkDefaults,
	}, {
		name: "all set",
		env:  map[string]string{EnvMaxQueueSize: "100", EnvMaxExportBatchSize: "10", EnvScheduleDelay: "250", EnvExportTimeout: "1500"},
		want: with(func(c *Config) {
			c.MaxQueueSize, c.MaxExportBatchSize = 100, 10
			c.ScheduleDelay, c.ExportTimeout = 250*time.Millisecond, 1500*time.Millisecond
		}),
	}, {
		name: "batch above a small queue is capped at the queue",
		env:  map[string]string{EnvMaxQueueSize: "100", EnvMaxExportBatchSize: "200"},
		want: with(func(c *Config) { c.MaxQueueSize, c.MaxExportBatchSize = 100, 100 }),
	}, {
		name: "batch above a large queue falls back to 512, as in the SDK",
		env:  map[string]string{EnvMaxQueueSize: "1000", EnvMaxExportBatchSize: "2000"},
		want: with(func(c *Config) { c.MaxQueueSize, c.MaxExportBatchSize = 1000, 512 }),
	}, {
		name: "default batch above a small queue",
		env:  map[string]string{EnvMaxQueueSize: "64"},
		want: with(func(c *Config) { c.MaxQueueSize, c.MaxExportBatchSize = 64, 64 }),
	}, {
		name: "batch equal to queue",
		env:  map[string]string{EnvMaxQueueSize: "7", EnvMaxExportBatchSize: "7"},
		want: with(func(c *Config) { c.MaxQueueSize, c.MaxExportBatchSize = 7, 7 }),
	}, {
		name: "export timeout 0 means none, as in the SDK",
		env:  map[string]string{EnvExportTimeout: "0"},
		want: with(func(c *Config) { c.ExportTimeout = NoExportTimeout }),
	}, {
		name: "smallest accepted values",
		env:  map[string]string{EnvMaxQueueSize: "1", EnvMaxExportBatchSize: "1", EnvScheduleDelay: "1"},
		want: with(func(c *Config) {
			c.MaxQueueSize, c.MaxExportBatchSize, c.ScheduleDelay = 1, 1, time.Millisecond
		}),
	}, {
		name: "largest queue",
		env:  map[string]string{EnvMaxQueueSize: "1048576"},
		want: with(func(c *Config) { c.MaxQueueSize = MaxQueueSizeLimit }),
	}, {
		name:    "queue not a number",
		env:     map[string]string{EnvMaxQueueSize: "lots"},
		wantErr: `OTEL_BSP_MAX_QUEUE_SIZE="lots": not an integer`,
	}, {
		name:    "queue zero",
		env:     map[string]string{EnvMaxQueueSize: "0"},
		wantErr: `OTEL_BSP_MAX_QUEUE_SIZE="0": must be at least 1`,
	}, {
		name:    "queue negative (panics in the SDK)",
		env:     map[string]string{EnvMaxQueueSize: "-5"},
		wantErr: `OTEL_BSP_MAX_QUEUE_SIZE="-5": must be at least 1`,
	}, {
		name:    "queue too large",
		env:     map[string]string{EnvMaxQueueSize: "1048577"},
		wantErr: `OTEL_BSP_MAX_QUEUE_SIZE="1048577": must be at most 1048576`,
	}, {
		name:    "batch with spaces",
		env:     map[string]string{EnvMaxExportBatchSize: " 5"},
		wantErr: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE=" 5": not an integer`,
	}, {
		name:    "batch zero",
		env:     map[string]string{EnvMaxExportBatchSize: "0"},
		wantErr: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE="0": must be at least 1`,
	}, {
		name:    "delay with a unit",
		env:     map[string]string{EnvScheduleDelay: "5s"},
		wantErr: `OTEL_BSP_SCHEDULE_DELAY="5s": not an integer`,
	}, {
		name:    "delay fractional",
		env:     map[string]string{EnvScheduleDelay: "1.5"},
		wantErr: `OTEL_BSP_SCHEDULE_DELAY="1.5": not an integer`,
	}, {
		name:    "delay zero (spins in the SDK)",
		env:     map[string]string{EnvScheduleDelay: "0"},
		wantErr: `OTEL_BSP_SCHEDULE_DELAY="0": must be at least 1`,
	}, {
		name:    "delay overflowing a Duration",
		env:     map[string]string{EnvScheduleDelay: "9223372036854776"},
		wantErr: `OTEL_BSP_SCHEDULE_DELAY="9223372036854776": must be at most 9223372036854`,
	}, {
		name:    "delay overflowing an int",
		env:     map[string]string{EnvScheduleDelay: "99999999999999999999"},
		wantErr: `OTEL_BSP_SCHEDULE_DELAY="99999999999999999999": not an integer`,
	}, {
		name:    "timeout negative",
		env:     map[string]string{EnvExportTimeout: "-1"},
		wantErr: `OTEL_BSP_EXPORT_TIMEOUT="-1": must be at least 0`,
	}, {
		name:    "timeout not a number",
		env:     map[string]string{EnvExportTimeout: "30s"},
		wantErr: `OTEL_BSP_EXPORT_TIMEOUT="30s": not an integer`,
	}, {
		name:    "first bad variable wins over later good ones",
		env:     map[string]string{EnvMaxQueueSize: "x", EnvScheduleDelay: "100"},
		wantErr: `OTEL_BSP_MAX_QUEUE_SIZE="x"`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ConfigFromEnv() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv() error = %v", err)
			}
			assertConfig(t, got, tc.want)
		})
	}
}

func TestConfigWithDefaults(t *testing.T) {
	fake := clocktesting.NewFakeClock(time.Time{})
	tests := []struct {
		name string
		in   Config
		want Config
	}{{
		name: "zero value is the SDK's defaults",
		want: sdkDefaults,
	}, {
		name: "negative values take the defaults, negative timeout means none",
		in:   Config{MaxQueueSize: -1, MaxExportBatchSize: -1, ScheduleDelay: -time.Second, ExportTimeout: -time.Second},
		want: with(func(c *Config) { c.ExportTimeout = NoExportTimeout }),
	}, {
		name: "batch above queue capped",
		in:   Config{MaxQueueSize: 10, MaxExportBatchSize: 11},
		want: with(func(c *Config) { c.MaxQueueSize, c.MaxExportBatchSize = 10, 10 }),
	}, {
		name: "set values kept, clock kept",
		in:   Config{MaxQueueSize: 3, MaxExportBatchSize: 2, ScheduleDelay: time.Minute, ExportTimeout: time.Hour, Clock: fake},
		want: Config{MaxQueueSize: 3, MaxExportBatchSize: 2, ScheduleDelay: time.Minute, ExportTimeout: time.Hour, Clock: fake},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertConfig(t, tc.in.withDefaults(), tc.want)
		})
	}
}

// assertConfig compares the comparable fields of two Configs (OnDrop is a
// func).
func assertConfig(t *testing.T, got, want Config) {
	t.Helper()
	type fields struct {
		queue, batch   int
		delay, timeout time.Duration
		clock          clock.Clock
	}
	g := fields{got.MaxQueueSize, got.MaxExportBatchSize, got.ScheduleDelay, got.ExportTimeout, got.Clock}
	w := fields{want.MaxQueueSize, want.MaxExportBatchSize, want.ScheduleDelay, want.ExportTimeout, want.Clock}
	if g != w {
		t.Errorf("Config = %+v, want %+v", got, want)
	}
}
