// Command backend is the benchmark's user container: a minimal HTTP/1.1
// server answering every request with the 2-byte body "ok", so that the
// benchmark measures the proxies in front of it rather than the app.
//
// Usage: backend -addr 127.0.0.1:PORT
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"time"
)

var (
	body        = []byte("ok")
	contentType = []string{"text/plain; charset=utf-8"}
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = contentType
			w.Write(body) //nolint:errcheck // the client may be gone; nothing to do
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Fatal(srv.Serve(ln))
}
