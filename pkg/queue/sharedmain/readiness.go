package sharedmain

import (
	"errors"

	"go.uber.org/zap"

	"github.com/queue-proxy/queue-proxy/pkg/queue/readiness"
)

// newProber returns the readiness check the probe handler asks on every
// health probe (CONTRACT.md §4): SERVING_READINESS_PROBE decoded (one probe,
// or an array with ENABLE_MULTI_CONTAINER_PROBES) and run against the user
// container, with ENABLE_HTTP2_AUTO_DETECTION. An empty probe means always
// ready. An error is a startup failure (exit 1); it names the variable and
// the problem.
func newProber(cfg *config, logger *zap.SugaredLogger) (func() bool, error) {
	probes, err := readiness.Decode(cfg.ServingReadinessProbe, cfg.EnableMultiContainerProbes)
	if err != nil {
		return nil, errors.New("SERVING_READINESS_PROBE: " + err.Error())
	}
	if len(probes) == 0 {
		return func() bool { return true }, nil
	}
	p, err := readiness.NewProber(probes, readiness.Options{
		HTTP2AutoDetection: cfg.EnableHTTP2AutoDetection,
		Logger:             logger,
	})
	if err != nil {
		return nil, errors.New("SERVING_READINESS_PROBE: " + err.Error())
	}
	return p.ProbeContainer, nil
}
