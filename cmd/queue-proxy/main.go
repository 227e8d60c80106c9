// Command queue-proxy is the Knative Serving queue sidecar. All behaviour
// lives in pkg/queue/sharedmain; custom builds call sharedmain.Main with
// Options instead of using this command.
package main

import (
	"os"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

func main() {
	if err := sharedmain.Main(); err != nil {
		os.Exit(1)
	}
}
