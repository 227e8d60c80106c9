package main

import "net/http"

// useH2C makes the bare proxy the yardstick for h2c loads (-h2c, `make
// bench-scale`): its server accepts h2c (HTTP/2 with prior knowledge)
// besides HTTP/1.1, and its Transport speaks only h2c to the backend,
// whatever the client spoke, as queue-proxy does for an HTTP/2 request.
func useH2C(srv *http.Server, tr *http.Transport) {
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
}
