package sharedmain

import (
	"net/http"

	"go.uber.org/zap"
)

// newTLSServer returns the "main tls" server on QUEUE_SERVING_TLS_PORT when
// the serving certificate is mounted, serving h with the same chain as the
// plain main server (CONTRACT.md §7), and a func that stops its certificate
// watcher; nil, no-op when TLS is off.
//
// TLS serving lands with issue 5.
func newTLSServer(cfg *config, logger *zap.SugaredLogger, h http.Handler) (*server, func(), error) {
	return nil, func() {}, nil
}
