// Command queue-proxy is the Knative Serving queue sidecar. All behaviour
// lives in pkg/queue/sharedmain; custom builds call sharedmain.Main with
// Options instead of using this command.
//
// Without flags it runs queue-proxy. With -print-config it prints the
// configuration the environment resolves to as JSON on stdout and exits 0,
// or prints the error startup would give on stderr and exits 1: a preflight
// check for a Knative configuration change. An unknown flag prints the usage
// and exits 2.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

func main() {
	printConfig := flag.Bool("print-config", false,
		"print the configuration resolved from the environment as JSON and exit (status 1 and the startup error on stderr when the environment is invalid)")
	flag.Parse()
	if *printConfig {
		if err := sharedmain.PrintConfig(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := sharedmain.Main(); err != nil {
		os.Exit(1)
	}
}
