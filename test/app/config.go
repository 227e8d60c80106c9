package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// config is the program's configuration, read from flags and the environment.
type config struct {
	port            string        // TCP port to listen on
	shutdownTimeout time.Duration // bound on the graceful shutdown
	opts            options       // handler settings
}

// parseConfig reads the flags in args and the variables PORT, READY_DELAY and
// ENABLE_CRASH through getenv. The -port flag wins over PORT.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	cfg := config{}
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.StringVar(&cfg.port, "port", port, "port to listen on (overrides $PORT)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "bound on the graceful shutdown")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if n, err := strconv.Atoi(cfg.port); err != nil || n < 0 || n > 65535 {
		return config{}, fmt.Errorf("invalid port %q: want 0-65535", cfg.port)
	}
	if cfg.shutdownTimeout <= 0 {
		return config{}, fmt.Errorf("invalid -shutdown-timeout %v: want > 0", cfg.shutdownTimeout)
	}
	if v := getenv("READY_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return config{}, fmt.Errorf("invalid READY_DELAY %q: want a non-negative Go duration", v)
		}
		cfg.opts.readyDelay = d
	}
	if v := getenv("ENABLE_CRASH"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return config{}, fmt.Errorf("invalid ENABLE_CRASH %q: want true or false", v)
		}
		cfg.opts.enableCrash = b
	}
	return cfg, nil
}
