package sharedmain

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/queue-proxy/queue-proxy/pkg/http/bgread"
	"github.com/queue-proxy/queue-proxy/pkg/http/h1server"
	"github.com/queue-proxy/queue-proxy/pkg/http/h2c"
	"github.com/queue-proxy/queue-proxy/pkg/profiling"
)

// Server limits. Knative sets ReadHeaderTimeout to a minute on every server;
// header sizes keep net/http's 1 MiB default on the main port, where clients
// send what they send, and are small on the internal ports.
const (
	readHeaderTimeout      = time.Minute
	profileHeaderTimeout   = 15 * time.Second
	mainMaxHeaderBytes     = http.DefaultMaxHeaderBytes
	internalMaxHeaderBytes = 64 << 10
)

// backgroundReadDelay is how long the main server defers net/http's
// background read of a connection whose request is being served
// (pkg/http/bgread): a request answered sooner spares a read system call,
// and a client that goes away during a longer one cancels it this much
// later.
const backgroundReadDelay = time.Millisecond

// Server names, as they appear in the log and in tests.
const (
	serverMain    = "main"
	serverAdmin   = "admin"
	serverMetrics = "metrics"
	serverProfile = "profile"
)

type server struct {
	name string
	srv  *http.Server
	ln   net.Listener
	// fast, when set, serves ln with its fast path and hands the other
	// connections to srv (the main port, QP_SERVER_PATH=auto).
	fast *h1server.Server
}

// useFastServer reports whether the main port serves plain HTTP/1.1
// requests with pkg/http/h1server: QP_SERVER_PATH auto and full-duplex mode
// off (its handler layer asks net/http's server for it).
func useFastServer(cfg *config) bool {
	return cfg.ServerPath != upstreamGeneric && !cfg.EnableHTTPFullDuplex
}

// serverSet is every listener queue-proxy opened.
type serverSet []server

// listenAll opens every listener before any serves, so that a port in use is
// a startup error naming the server, not a half-started process. extra are
// servers whose listeners are already open (TLS, user metrics); they are
// closed too if anything fails.
func listenAll(cfg *config, obs observability, main http.Handler, admin, metrics http.Handler, extra ...server) (serverSet, error) {
	type spec struct {
		name, port string
		srv        *http.Server
	}
	specs := []spec{
		{serverMain, cfg.QueueServingPort, newH2CServer(main)},
		{serverAdmin, cfg.AdminPort, newServer(admin, readHeaderTimeout)},
		{serverMetrics, cfg.MetricsPort, newServer(metricsMux(metrics), readHeaderTimeout)},
	}
	if obs.profiling {
		specs = append(specs, spec{serverProfile, cfg.ProfilingPort, newServer(profiling.Handler(), profileHeaderTimeout)})
	}

	set := serverSet(extra)
	for _, s := range specs {
		ln, err := net.Listen("tcp", ":"+s.port)
		if err != nil {
			set.close()
			return nil, errors.New("server " + s.name + ": " + err.Error())
		}
		sv := server{name: s.name, srv: s.srv, ln: ln}
		if s.name == serverMain {
			if useFastServer(cfg) {
				sv.fast = &h1server.Server{
					Handler:             main,
					Generic:             s.srv,
					ReadHeaderTimeout:   readHeaderTimeout,
					BackgroundReadDelay: backgroundReadDelay,
				}
			} else {
				sv.ln = bgread.Configure(s.srv, ln, backgroundReadDelay)
			}
		}
		set = append(set, sv)
	}
	return set, nil
}

// newH2CServer serves HTTP/1.1 and cleartext HTTP/2, both by prior knowledge
// (the activator, ingresses) and by the HTTP/1.1 `Upgrade: h2c` handshake
// (curl --http2), all with net/http's own HTTP/2 server (pkg/http/h2c), so
// that Shutdown sends GOAWAY on h2c connections too.
func newH2CServer(h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    mainMaxHeaderBytes,
	}
	h2c.Configure(srv)
	return srv
}

func newServer(h http.Handler, headerTimeout time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: headerTimeout, MaxHeaderBytes: internalMaxHeaderBytes}
}

// metricsMux routes only /metrics (any method) to the autoscaler stats.
func metricsMux(stats http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", stats)
	return mux
}

// addrs maps server names to their bound addresses.
func (s serverSet) addrs() map[string]string {
	m := make(map[string]string, len(s))
	for _, sv := range s {
		m[sv.name] = sv.ln.Addr().String()
	}
	return m
}

// serve starts every server; the channel receives the first serving error.
func (s serverSet) serve(logger *zap.SugaredLogger) <-chan error {
	errCh := make(chan error, len(s))
	for _, sv := range s {
		logger.Infof("Starting http server %s %s", sv.name, sv.ln.Addr())
		if sv.srv.ErrorLog == nil {
			sv.srv.ErrorLog = serverErrorLog(logger, sv.name)
		}
		go func() {
			serve := sv.srv.Serve
			if sv.fast != nil {
				serve = sv.fast.Serve
			}
			if err := serve(sv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errCh <- errors.New("server " + sv.name + ": " + err.Error())
			}
		}()
	}
	return errCh
}

// serverErrorLog routes net/http's own messages about a server (TLS
// handshake failures, accept errors, handler panics) into the structured log
// at warning level, with the server's name, instead of plain text on stderr
// (where Knative's queue-proxy writes them), so that log pipelines parse
// them and the logger's sampling bounds a flood of them.
func serverErrorLog(logger *zap.SugaredLogger, name string) *log.Logger {
	l, err := zap.NewStdLogAt(logger.Desugar().With(zap.String("server", name)), zapcore.WarnLevel)
	if err != nil { // only for an invalid level
		panic(err)
	}
	return l
}

// shutdown stops every server gracefully, in parallel, waiting for the
// requests in flight (each bounded by the revision timeout).
func (s serverSet) shutdown(logger *zap.SugaredLogger) {
	var wg sync.WaitGroup
	for _, sv := range s {
		wg.Go(func() {
			shutdown := sv.srv.Shutdown
			if sv.fast != nil {
				shutdown = sv.fast.Shutdown
			}
			if err := shutdown(context.Background()); err != nil {
				logger.Errorw("Failed to shutdown server", zap.String("server", sv.name), zap.Error(err))
			}
		})
	}
	wg.Wait()
}

// close stops every server at once (startup failure).
func (s serverSet) close() {
	for _, sv := range s {
		if sv.fast != nil {
			sv.fast.Close()
		}
		sv.srv.Close()
		sv.ln.Close()
	}
}
