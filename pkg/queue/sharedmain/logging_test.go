package sharedmain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testEnv = Env{ServingNamespace: "ns", ServingRevision: "rev-1", ServingPod: "pod-a"}

// fileLoggingConfig is a Knative config-logging style zap config writing to
// path, so the test can read what the logger wrote.
func fileLoggingConfig(path, level string) string {
	return `{"level": "` + level + `", "encoding": "json", "outputPaths": ["` + path + `"], "errorOutputPaths": ["stderr"],
	  "encoderConfig": {"timeKey": "timestamp", "levelKey": "severity", "nameKey": "logger", "callerKey": "caller",
	  "messageKey": "message", "stacktraceKey": "stacktrace", "levelEncoder": "capital", "timeEncoder": "iso8601"}}`
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewLoggerFromConfig(t *testing.T) {
	cases := []struct {
		name, configLevel, levelOverride string
		wantDebug                        bool
		wantWarnings                     int
	}{
		{name: "config level info", configLevel: "info"},
		{name: "override to debug", configLevel: "info", levelOverride: "debug", wantDebug: true},
		{name: "config level debug", configLevel: "debug", wantDebug: true},
		{name: "bad override ignored", configLevel: "info", levelOverride: "loud", wantWarnings: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.json")
			logger, warnings := newLogger(fileLoggingConfig(path, tc.configLevel), tc.levelOverride, testEnv)
			if len(warnings) != tc.wantWarnings {
				t.Errorf("warnings = %q, want %d", warnings, tc.wantWarnings)
			}
			logger.Debug("debug line")
			logger.Info("info line")
			logger.Sync()
			lines := readLines(t, path)
			wantLines := 1
			if tc.wantDebug {
				wantLines = 2
			}
			if len(lines) != wantLines {
				t.Fatalf("got %d lines %v, want %d", len(lines), lines, wantLines)
			}
			last := lines[len(lines)-1]
			for k, v := range map[string]string{
				"logger": "queueproxy", "severity": "INFO", "message": "info line",
				"knative.dev/key": "ns/rev-1", "knative.dev/pod": "pod-a",
			} {
				if last[k] != v {
					t.Errorf("field %s = %v, want %q (line %v)", k, last[k], v, last)
				}
			}
			for _, k := range []string{"timestamp", "caller"} {
				if _, ok := last[k]; !ok {
					t.Errorf("field %s missing in %v", k, last)
				}
			}
		})
	}
}

func TestNewLoggerFallsBack(t *testing.T) {
	for _, cfg := range []string{"", "   ", "{not json"} {
		logger, warnings := newLogger(cfg, "", testEnv)
		if logger == nil {
			t.Fatalf("config %q: nil logger", cfg)
		}
		if wantWarn := strings.TrimSpace(cfg) != ""; (len(warnings) > 0) != wantWarn {
			t.Errorf("config %q: warnings %q, want some: %v", cfg, warnings, wantWarn)
		}
		if !logger.Desugar().Core().Enabled(0) || logger.Desugar().Core().Enabled(-1) {
			t.Errorf("config %q: default level must be info", cfg)
		}
	}
}
