package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// blockingWait returns a wait hook that reports each call on entered and then
// blocks until release is closed or the request is cancelled.
func blockingWait(entered chan<- struct{}, release <-chan struct{}) func(context.Context, time.Duration) error {
	return func(ctx context.Context, _ time.Duration) error {
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// startServe runs serve on a loopback port with a handler whose /sleep blocks
// as blockingWait does. It returns the address, the channel of serve's result
// and a channel closed when Shutdown begins.
func startServe(t *testing.T, ctx context.Context, timeout time.Duration, entered chan<- struct{}, release <-chan struct{}) (string, <-chan error, <-chan struct{}) {
	t.Helper()
	srv, err := newServer(newMux(options{wait: blockingWait(entered, release)}))
	if err != nil {
		t.Fatal(err)
	}
	shuttingDown := make(chan struct{})
	srv.RegisterOnShutdown(func() { close(shuttingDown) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve(ctx, srv, ln, timeout) }()
	return ln.Addr().String(), served, shuttingDown
}

// result is the outcome of a request made in the background.
type result struct {
	code int
	body string
	err  error
}

// getInBackground GETs url with its own transport and reports on the channel.
func getInBackground(t *testing.T, url string) <-chan result {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	out := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- result{code: resp.StatusCode, body: string(b), err: err}
	}()
	return out
}

func TestServeGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, served, shuttingDown := startServe(t, ctx, 10*time.Second, entered, release)

	inFlight := getInBackground(t, "http://"+addr+"/sleep?ms=7")
	await(t, entered, "the request to be in flight")
	stop() // as SIGTERM does
	await(t, shuttingDown, "shutdown to begin")
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("new connections are still accepted during shutdown")
	}
	close(release)

	if r := await(t, inFlight, "the in-flight request"); r.err != nil || r.code != 200 || r.body != "slept 7 ms\n" {
		t.Errorf("in-flight request got %d %q %v, want it to complete", r.code, r.body, r.err)
	}
	if err := await(t, served, "serve to return"); err != nil {
		t.Errorf("serve = %v, want nil after a graceful shutdown", err)
	}
}

func TestServeShutdownTimeout(t *testing.T) {
	entered, never := make(chan struct{}, 1), make(chan struct{})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, served, _ := startServe(t, ctx, time.Millisecond, entered, never)

	stuck := getInBackground(t, "http://"+addr+"/sleep?ms=1")
	await(t, entered, "the request to be in flight")
	stop()
	if err := await(t, served, "serve to return"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("serve = %v, want the shutdown deadline exceeded", err)
	}
	if r := await(t, stuck, "the stuck request"); r.err == nil {
		t.Errorf("stuck request got %d %q, want its connection closed", r.code, r.body)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		occupyPort bool // listen on a port first and pass it as -port
		wantErr    bool
	}{
		{name: "serves until cancelled", args: []string{"-port", "0"}},
		{name: "bad port", args: []string{"-port", "http"}, wantErr: true},
		{name: "bad READY_DELAY", args: []string{"-port", "0"}, env: map[string]string{"READY_DELAY": "later"}, wantErr: true},
		{name: "port in use", occupyPort: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.occupyPort {
				ln, err := net.Listen("tcp", ":0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				_, port, _ := net.SplitHostPort(ln.Addr().String())
				tc.args = []string{"-port", port}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // run returns once it has started and shut down
			err := run(ctx, tc.args, func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Errorf("run = %v, want error %t", err, tc.wantErr)
			}
		})
	}
}
