// Command backend is the benchmark's user container: a minimal HTTP/1.1
// server answering every request with the 2-byte body "ok", so that the
// benchmark measures the proxies in front of it rather than the app.
// GET /sleep?ms=N answers the same after N milliseconds (0 to 60000), for
// loads that queue behind a container concurrency; a bad N is a 400.
//
// With -scale it also serves the scale benchmark's websocket echo, upload
// and download endpoints (scale.go) and speaks h2c besides HTTP/1.1.
//
// Usage: backend -addr 127.0.0.1:PORT [-scale]
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"
)

var (
	body        = []byte("ok")
	contentType = []string{"text/plain; charset=utf-8"}
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	scale := flag.Bool("scale", false, "also serve /ws, /upload and /download, and h2c (the scale benchmark)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(serve),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if *scale {
		srv.Handler = scaleHandler(srv.Handler)
		srv.Protocols = scaleProtocols()
	}
	log.Fatal(srv.Serve(ln))
}

// maxSleep bounds /sleep's ms.
const maxSleep = 60000

// serve answers "ok", after the pause /sleep?ms=N asks for.
func serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/sleep" {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > maxSleep {
			http.Error(w, "ms must be an integer from 0 to 60000", http.StatusBadRequest)
			return
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header()["Content-Type"] = contentType
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do
}
