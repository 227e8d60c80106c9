package http

import (
	"context"
	"errors"
	"net/http"
	"os"

	"go.uber.org/zap"
)

// sockstatPath is the file whose contents are logged with every proxy
// error, to show socket exhaustion at a glance. A variable so that tests can
// point it elsewhere.
var sockstatPath = "/proc/net/sockstat"

// ErrorHandler returns a function for httputil.ReverseProxy.ErrorHandler
// that answers upstream failures as Knative's queue-proxy does
// (CONTRACT.md §3.2, §3.12):
//
//   - an error wrapping context.Canceled (the client went away, or an outer
//     layer such as the timeout handler gave up) is logged at DEBUG and
//     nothing is written;
//   - any other error (dial, transport, protocol) is logged at ERROR with the
//     contents of /proc/net/sockstat ("" when unreadable) and answered with
//     502 and the error text plus "\n" as a text/plain body (http.Error).
func ErrorHandler(logger *zap.SugaredLogger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, _ *http.Request, err error) {
		if errors.Is(err, context.Canceled) {
			logger.Debugw("client canceled request", zap.Error(err))
			return
		}
		logger.Errorw("error reverse proxying request; sockstat: "+readSockstat(), zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
}

// readSockstat returns the contents of sockstatPath, or "" if it cannot be
// read.
func readSockstat() string {
	b, err := os.ReadFile(sockstatPath)
	if err != nil {
		return ""
	}
	return string(b)
}
