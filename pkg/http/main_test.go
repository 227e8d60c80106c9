package http

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// TestMain fails the package if a test leaves goroutines behind. The
// transport under test (NewProxyTransport) cannot close its idle
// connections itself, so every test server closes all the connections it
// accepted on cleanup (trackingListener); the client side then sees EOF and
// its goroutines end. Nothing is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on a channel so that a broken proxy fails a
// test instead of hanging it. It is a failure guard, not a timing device.
const waitTimeout = 10 * time.Second

// trackingListener remembers every connection it accepts so that cleanup
// can close them all, including hijacked (h2c, websocket) ones that
// httptest.Server no longer tracks.
type trackingListener struct {
	net.Listener

	mu       sync.Mutex
	conns    []net.Conn
	accepted int
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.accepted++
	l.mu.Unlock()
	return c, nil
}

// Accepted is the number of connections accepted so far.
func (l *trackingListener) Accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// startServer starts an httptest server for h on loopback, serving h2c as
// well as HTTP/1.1 when withH2C is set. On cleanup it closes the server and
// every connection it ever accepted.
func startServer(tb testing.TB, h http.Handler, withH2C bool) (*httptest.Server, *trackingListener) {
	tb.Helper()
	if withH2C {
		h = h2c.NewHandler(h, &http2.Server{})
	}
	srv := httptest.NewUnstartedServer(h)
	tl := &trackingListener{Listener: srv.Listener}
	srv.Listener = tl
	srv.Start()
	tb.Cleanup(func() {
		tl.closeAll()
		srv.Close()
	})
	return srv, tl
}

// received is what a recording backend saw of one request.
type received struct {
	Method     string
	RequestURI string
	Host       string
	Proto      string
	Header     http.Header
	Body       string
}

// recorder is a backend handler that reports every request it receives on
// a channel and answers 200 "ok". It never blocks: should a broken proxy
// send more requests than a test reads, the excess is dropped, and a test
// waiting for a request it expected times out and fails.
type recorder struct {
	got chan received
}

func newRecorder() *recorder {
	return &recorder{got: make(chan received, 16)}
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	select {
	case rec.got <- received{
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Host:       r.Host,
		Proto:      r.Proto,
		Header:     r.Header.Clone(),
		Body:       string(body),
	}:
	default:
	}
	io.WriteString(w, "ok")
}

// next returns the next recorded request or fails the test.
func (rec *recorder) next(tb testing.TB) received {
	tb.Helper()
	return recv(tb, rec.got)
}

// recv receives one value from ch or fails the test after waitTimeout.
func recv[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		tb.Fatal("timed out waiting on channel")
		panic("unreachable")
	}
}

// newTestProxy builds the proxy as the queue-proxy wires it: our transport
// and our error handler, logging to the test.
func newTestProxy(tb testing.TB, target, hostOverride string, remove []string) *httputil.ReverseProxy {
	tb.Helper()
	rp := NewHeaderPruningReverseProxy(target, hostOverride, remove, false)
	rp.Transport = NewProxyTransport(0)
	rp.ErrorHandler = ErrorHandler(zaptest.NewLogger(tb).Sugar())
	return rp
}

// newClient returns an HTTP/1.1 client that adds nothing on its own (no
// Accept-Encoding) and closes its idle connections on cleanup. Its timeout
// turns a hung proxy into a failed test.
func newClient(tb testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitTimeout}
}

// newH2CClient returns an HTTP/2 prior-knowledge cleartext client.
func newH2CClient(tb testing.TB) *http.Client {
	tr := &http2.Transport{
		AllowHTTP:          true,
		DisableCompression: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitTimeout}
}

// nopLogger is for benchmarks.
var nopLogger = zap.NewNop().Sugar()
