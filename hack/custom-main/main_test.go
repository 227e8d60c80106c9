package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestOptionsSeeTraffic runs the real sharedmain.Main with the example's
// Options and checks that both wrappers saw a proxied request, and that the
// Ctx Option can stop Main gracefully.
func TestOptionsSeeTraffic(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "transport header: "+r.Header.Get("X-Custom-Transport"))
	}))
	defer app.Close()
	_, userPort, _ := net.SplitHostPort(app.Listener.Addr().String())
	port := freePort(t)
	for k, v := range map[string]string{
		"SERVING_NAMESPACE": "ns", "SERVING_CONFIGURATION": "c", "SERVING_REVISION": "r",
		"SERVING_POD": "p", "SERVING_POD_IP": "127.0.0.1", "CONTAINER_CONCURRENCY": "2",
		"QUEUE_SERVING_PORT": port, "QUEUE_SERVING_TLS_PORT": "0", "USER_PORT": userPort,
		"REVISION_TIMEOUT_SECONDS": "10", "SERVING_LOGGING_CONFIG": "", "SERVING_LOGGING_LEVEL": "error",
		"QP_ADMIN_PORT": "0", "QP_METRICS_PORT": "0", "QP_DRAIN_QUIET_PERIOD": "1ms",
	} {
		t.Setenv(k, v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c Counters
	done := make(chan error, 1)
	go func() {
		done <- sharedmain.Main(
			func(d *sharedmain.Defaults) { d.Ctx = ctx }, // stop Main from the test
			WithTransportCounter(&c), WithHandlerCounter(&c))
	}()

	var resp *http.Response
	var err error
	for i := 0; i < 500; i++ { // the server listens within milliseconds
		if resp, err = http.Get("http://127.0.0.1:" + port + "/"); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Main returned early: %v", err)
		default:
		}
		time.Sleep(10 * time.Millisecond) // startup poll; nothing is asserted about time
	}
	if err != nil {
		t.Fatalf("proxy never answered: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(body), "transport header: seen"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if resp.Header.Get("X-Custom-Handler") != "seen" {
		t.Errorf("the handler wrapper's response header is missing: %v", resp.Header)
	}
	if c.RoundTrips.Load() != 1 || c.Handled.Load() != 1 {
		t.Errorf("round trips %d, handled %d; want 1 and 1", c.RoundTrips.Load(), c.Handled.Load())
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Main after cancel = %v, want nil", err)
	}
}
