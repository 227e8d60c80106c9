package sharedmain

import (
	"encoding/json"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"knative.dev/pkg/logging/logkey"
)

// loggerName is the name Knative's queue-proxy gives its logger.
const loggerName = "queueproxy"

// defaultLoggingConfig is used when SERVING_LOGGING_CONFIG is empty or does not
// parse: JSON on stderr with the keys Knative's production config uses
// (severity, timestamp, logger, caller, message, stacktrace), sampling 100/100.
func defaultLoggingConfig() zap.Config {
	return zap.Config{
		Level:    zap.NewAtomicLevelAt(zapcore.InfoLevel),
		Encoding: "json",
		Sampling: &zap.SamplingConfig{Initial: 100, Thereafter: 100},
		EncoderConfig: zapcore.EncoderConfig{
			TimeKey:        "timestamp",
			LevelKey:       "severity",
			NameKey:        "logger",
			CallerKey:      "caller",
			MessageKey:     "message",
			StacktraceKey:  "stacktrace",
			LineEnding:     zapcore.DefaultLineEnding,
			EncodeLevel:    zapcore.CapitalLevelEncoder,
			EncodeTime:     zapcore.ISO8601TimeEncoder,
			EncodeDuration: zapcore.StringDurationEncoder,
			EncodeCaller:   zapcore.ShortCallerEncoder,
		},
		OutputPaths:      []string{"stderr"},
		ErrorOutputPaths: []string{"stderr"},
	}
}

// newLogger builds the queueproxy logger from SERVING_LOGGING_CONFIG (a zap
// JSON config) and SERVING_LOGGING_LEVEL. Like Knative, an empty or invalid
// config falls back to the default one; the problems found are returned as
// warnings for the caller to log with the logger it got, so nothing is lost.
func newLogger(configJSON, level string, env Env) (*zap.SugaredLogger, []string) {
	var warnings []string
	cfg := defaultLoggingConfig()
	if strings.TrimSpace(configJSON) != "" {
		parsed := defaultLoggingConfig()
		if err := json.Unmarshal([]byte(configJSON), &parsed); err != nil {
			warnings = append(warnings, "SERVING_LOGGING_CONFIG is not a valid zap config, using the default: "+err.Error())
		} else {
			cfg = parsed
		}
	}
	if level != "" {
		var l zapcore.Level
		if err := l.UnmarshalText([]byte(level)); err != nil {
			warnings = append(warnings, "SERVING_LOGGING_LEVEL "+level+" is not a zap level, keeping "+cfg.Level.String())
		} else {
			cfg.Level = zap.NewAtomicLevelAt(l)
		}
	}
	// zap's own sampler would allocate its whole counter table (see
	// logSampler); the same sampling is done with a lazy one.
	var opts []zap.Option
	if sampling := cfg.Sampling; sampling != nil {
		cfg.Sampling = nil
		opts = append(opts, zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return newLogSampler(c, sampling.Initial, sampling.Thereafter)
		}))
	}
	logger, err := cfg.Build(opts...)
	if err != nil {
		warnings = append(warnings, "SERVING_LOGGING_CONFIG could not be built, using the default: "+err.Error())
		cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
		if logger, err = cfg.Build(opts...); err != nil {
			// The default config only fails if stderr cannot be opened.
			logger = zap.NewNop()
			warnings = append(warnings, "no logger could be built: "+err.Error())
		}
	}
	return logger.Named(loggerName).Sugar().With(
		zap.String(logkey.Key, env.ServingNamespace+"/"+env.ServingRevision),
		zap.String(logkey.Pod, env.ServingPod),
	), warnings
}
