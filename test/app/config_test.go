package main

import (
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantPort    string
		wantDelay   time.Duration
		wantCrash   bool
		wantTimeout time.Duration
		wantErr     bool
	}{
		{name: "defaults", wantPort: "8080", wantTimeout: 10 * time.Second},
		{name: "PORT", env: map[string]string{"PORT": "9000"}, wantPort: "9000", wantTimeout: 10 * time.Second},
		{name: "flag wins over PORT", args: []string{"-port", "9100"}, env: map[string]string{"PORT": "9000"},
			wantPort: "9100", wantTimeout: 10 * time.Second},
		{name: "all set", args: []string{"-shutdown-timeout", "3s"},
			env:      map[string]string{"READY_DELAY": "2s", "ENABLE_CRASH": "true"},
			wantPort: "8080", wantDelay: 2 * time.Second, wantCrash: true, wantTimeout: 3 * time.Second},
		{name: "crash off", env: map[string]string{"ENABLE_CRASH": "false"}, wantPort: "8080", wantTimeout: 10 * time.Second},
		{name: "bad PORT", env: map[string]string{"PORT": "eighty"}, wantErr: true},
		{name: "port too big", args: []string{"-port", "70000"}, wantErr: true},
		{name: "unknown flag", args: []string{"-verbose"}, wantErr: true},
		{name: "bad READY_DELAY", env: map[string]string{"READY_DELAY": "5"}, wantErr: true},
		{name: "negative READY_DELAY", env: map[string]string{"READY_DELAY": "-1s"}, wantErr: true},
		{name: "bad ENABLE_CRASH", env: map[string]string{"ENABLE_CRASH": "yes please"}, wantErr: true},
		{name: "zero shutdown timeout", args: []string{"-shutdown-timeout", "0s"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseConfig error = %v, want error %t", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if cfg.port != tc.wantPort || cfg.opts.readyDelay != tc.wantDelay ||
				cfg.opts.enableCrash != tc.wantCrash || cfg.shutdownTimeout != tc.wantTimeout {
				t.Errorf("got port %q delay %v crash %t timeout %v, want %q %v %t %v", cfg.port,
					cfg.opts.readyDelay, cfg.opts.enableCrash, cfg.shutdownTimeout,
					tc.wantPort, tc.wantDelay, tc.wantCrash, tc.wantTimeout)
			}
		})
	}
}
