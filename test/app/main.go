// Command app is a small demo "user container" for queue-proxy: the program a
// Knative Service would run next to the sidecar. It serves HTTP/1.1 and h2c on
// one port and offers endpoints that exercise what a proxy must carry
// (streams, server-sent events, websockets, large bodies, slow and failing
// requests, readiness changes). It is used by the `make run` demo and by the
// end-to-end tests.
//
// Usage:
//
//	app [-port N] [-shutdown-timeout D]
//
// Environment: PORT (default 8080, -port wins), READY_DELAY (Go duration
// before /healthz succeeds), ENABLE_CRASH (true enables /crash).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Args[1:], os.Getenv)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Print(err)
		os.Exit(1)
	}
}

// run reads the configuration, listens on all interfaces and serves until ctx
// is done.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := parseConfig(args, getenv)
	if err != nil {
		return err
	}
	srv, err := newServer(newMux(cfg.opts))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", ":"+cfg.port)
	if err != nil {
		return err
	}
	log.Printf("demo user container listening on %s (HTTP/1.1 and h2c)", ln.Addr())
	return serve(ctx, srv, ln, cfg.shutdownTimeout)
}

// newServer returns a server for h that speaks HTTP/1.1 and h2c, both with
// prior knowledge and through "Upgrade: h2c". The h2c package is deprecated
// in favour of http.Server.Protocols, but only it implements the Upgrade path,
// which proxies in front of a user container may use.
func newServer(h http.Handler) (*http.Server, error) {
	h2s := &http2.Server{}
	srv := &http.Server{
		Handler:           h2c.NewHandler(h, h2s), //nolint:staticcheck // see above
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
	}
	// Lets Shutdown send GOAWAY on h2c connections too.
	if err := http2.ConfigureServer(srv, h2s); err != nil {
		return nil, fmt.Errorf("configuring http2: %w", err)
	}
	return srv, nil
}

// serve runs srv on ln until ctx is done, then shuts it down gracefully:
// in-flight requests get up to timeout to finish, after which the remaining
// connections are closed and an error is returned.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		<-errc
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
