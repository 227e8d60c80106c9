// Package upstream is the lean HTTP/1.1 path to the user container (issue
// 13): the exchange is done on the serving goroutine, without net/http's
// client machinery (no per-connection goroutines, no channel hand-offs, no
// copy of the request's header map). It is built in parts, each checked
// against net/http:
//
//   - response.go: ReadResponse parses a response head into a reused
//     Response, and Response.Body frames its body exactly (Content-Length,
//     chunked with trailers, until close, or none), with net/http's rules;
//     anything it cannot frame exactly is an error, never a guess.
//   - request.go: WriteRequestHead writes the request line and headers
//     straight from the incoming request, as httputil.ReverseProxy and
//     net/http's Transport would put them on the wire: hop-by-hop headers
//     and the pruned ones skipped in place, X-Forwarded-For appended, the
//     body's framing chosen as net/http chooses it.
//   - pool.go: Pool keeps idle connections to one address (LIFO, an idle
//     limit and an idle timeout) and dials new ones; a connection goes back
//     only when its last response was read to its end and nothing says it
//     must close.
//
// Plain requests take this path; everything unusual (HTTP/2, Upgrade,
// Expect: 100-continue, request trailers, full duplex, unknown
// transfer-encodings) stays on net/http's Transport.
package upstream
