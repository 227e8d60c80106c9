package e2e

import (
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

// TestKnativeEnvHasTheReconcilers: the suite's environment sets every
// variable Knative's reconciler sets, so that it drifts with neither.
func TestKnativeEnvHasTheReconcilers(t *testing.T) {
	env := knativeEnv(ports{})
	for _, name := range sharedmain.ReconcilerEnv() {
		if _, ok := env[name]; !ok {
			t.Errorf("knativeEnv lacks %s, which the reconciler sets", name)
		}
	}
}
