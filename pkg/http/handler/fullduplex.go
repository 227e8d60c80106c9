package handler

import (
	"net/http"

	"go.uber.org/zap"
)

// FullDuplex returns next wrapped so that each request first enables full
// duplex on its response writer, which lets an HTTP/1.1 handler keep reading
// the request body after the response has started. Where that is not
// supported (HTTP/2, writers that do not offer it) the error is logged at
// ERROR as "Unable to enable full duplex" and the request proceeds. A nil
// logger discards the log.
func FullDuplex(next http.Handler, logger *zap.SugaredLogger) http.Handler {
	if logger == nil {
		logger = zap.NewNop().Sugar()
	}
	return &fullDuplexHandler{next: next, logger: logger}
}

type fullDuplexHandler struct {
	next   http.Handler
	logger *zap.SugaredLogger
}

func (h *fullDuplexHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		h.logger.Errorw("Unable to enable full duplex", zap.Error(err))
	}
	h.next.ServeHTTP(w, r)
}
