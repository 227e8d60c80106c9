// Command bareproxy is the benchmark's yardstick: the least a Go reverse
// proxy in front of the user container can do. It is net/http/httputil's
// ReverseProxy with a pooled 32 KiB copy buffer and an idle pool of 1000
// upstream connections, which is what Knative's queue-proxy builds its
// request path around, without anything else (no probes, breaker, stats,
// timeouts or drain).
//
// With -h2c it accepts h2c besides HTTP/1.1 and speaks h2c upstream
// (h2c.go), for the scale benchmark's h2c loads.
//
// Usage: bareproxy -addr :PORT -target 127.0.0.1:PORT [-h2c]
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// bufferPool hands out 32 KiB copy buffers (httputil.BufferPool).
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any {
		b := make([]byte, 32<<10)
		return &b
	}}}
}

func (bp *bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

func main() {
	addr := flag.String("addr", ":8081", "address to listen on")
	target := flag.String("target", "127.0.0.1:8080", "upstream host:port")
	h2c := flag.Bool("h2c", false, "accept h2c besides HTTP/1.1, and speak only h2c to the target")
	flag.Parse()

	upstream := &url.URL{Scheme: "http", Host: *target}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host // keep the client's Host, as queue-proxy does
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 5 * time.Second}).DialContext,
			MaxIdleConns:        1000,
			MaxIdleConnsPerHost: 1000,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		BufferPool: newBufferPool(),
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: time.Minute}
	if *h2c {
		useH2C(srv, proxy.Transport.(*http.Transport))
	}
	log.Fatal(srv.Serve(ln))
}
