package main

import (
	"io"
	"net/http"
	"strconv"

	"github.com/gorilla/websocket"
)

// The scale benchmark's endpoints (`make bench-scale`, -scale), served by
// scaleHandler in front of the usual "ok" handler:
//
//   - /ws: a websocket that echoes every message back as it came (text or
//     binary) until the client closes it.
//   - /upload: reads the request body to the end, discards it, and answers
//     its length in bytes as decimal text; a body that breaks off is a 400.
//   - /download?bytes=N: answers N bytes (Content-Length N, 0 ≤ N ≤ 1 TiB),
//     written in 64 KiB chunks as fast as the client takes them; a bad N is
//     a 400.
const (
	wsPath       = "/ws"
	uploadPath   = "/upload"
	downloadPath = "/download"
	maxDownload  = 1 << 40
	chunkSize    = 64 << 10
)

// chunk is what /download writes, over and over.
var chunk = func() []byte {
	b := make([]byte, chunkSize)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// upgrader accepts websockets from any origin: the benchmark's client sends
// none.
var upgrader = websocket.Upgrader{
	ReadBufferSize:  1 << 10,
	WriteBufferSize: 1 << 10,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// scaleHandler answers /ws, /upload and /download and passes every other
// request to next.
func scaleHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wsPath:
			echo(w, r)
		case uploadPath:
			upload(w, r)
		case downloadPath:
			download(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// echo upgrades to a websocket and sends every message back.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer c.Close()
	for {
		kind, msg, err := c.ReadMessage()
		if err != nil {
			return // closed, or broken: either way done
		}
		if err := c.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}

// upload discards the body and answers its length.
func upload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, strconv.FormatInt(n, 10)) //nolint:errcheck // the client may be gone
}

// download answers ?bytes=N bytes.
func download(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
	if err != nil || n < 0 || n > maxDownload {
		http.Error(w, "bytes must be an integer from 0 to 1099511627776", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	for n > 0 {
		b := chunk[:min(n, chunkSize)]
		if _, err := w.Write(b); err != nil {
			return // the client went away
		}
		n -= int64(len(b))
	}
}

// scaleProtocols is what the backend speaks with -scale: HTTP/1.1 and h2c
// (HTTP/2 with prior knowledge), for the scale benchmark's h2c loads.
func scaleProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}
