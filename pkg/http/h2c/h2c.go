// Package h2c serves cleartext HTTP/2 with net/http's own HTTP/2 server, in
// both forms Knative's queue-proxy accepts: prior knowledge (the activator,
// ingresses) and the HTTP/1.1 `Upgrade: h2c` handshake of RFC 7540 §3.2
// (curl --http2).
//
// net/http (Go 1.24+) serves prior-knowledge h2c itself when
// http.Protocols allows unencrypted HTTP/2, but has no upgrade handshake.
// golang.org/x/net/http2/h2c has both, by linking a second HTTP/2
// implementation (+0.36 MiB of binary and resident memory per pod). This
// package adds only the handshake, and hands the upgraded connection to
// net/http's HTTP/2 server through the "unencrypted_http2" TLSNextProto
// entry net/http registers for this purpose:
//
//  1. the upgrade request is answered `101 Switching Protocols`, and the
//     client's connection preface is read;
//  2. the HTTP/2 server is given the connection with, ahead of the client's
//     frames, a SETTINGS frame carrying the HTTP2-Settings header's payload
//     and a HEADERS frame that opens stream 1, as RFC 7540 §3.2 makes the
//     upgrade request stream 1;
//  3. the server's acknowledgement of that SETTINGS frame is removed from
//     its output (the 101 acknowledges those settings, RFC 7540 §3.2.1),
//     and the client's frames reach the server only after it, so that the
//     server acknowledges the client's SETTINGS separately (see
//     upgradedConn);
//  4. stream 1 is served with the original HTTP/1.1 request, so, as with
//     x/net (and so Knative), the upgraded request keeps HTTP/1.1
//     semantics and goes upstream over HTTP/1.1; later streams are
//     HTTP/2.
//
// Differences from x/net's h2c handler, all within RFC 7540: a request
// with a body, a CONNECT, a request whose HTTP2-Settings header is missing,
// repeated or malformed, and a request on a server without unencrypted
// HTTP/2 are served as HTTP/1.1 without upgrading (x/net reads any body
// into memory, and answers 500 for a bad header); and the consumed upgrade
// headers (Upgrade: h2c, HTTP2-Settings and their Connection tokens) are
// removed before the request reaches the handler, so they are not sent on
// to the user container.
//
// Connections upgraded here are served by the server's own HTTP/2
// machinery, so Shutdown sends them GOAWAY like any HTTP/2 connection. As
// with every hijacked connection, Shutdown does not wait for them; the
// requests on them go through the handler like all others.
package h2c

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// unencryptedHTTP2 is the TLSNextProto key under which net/http's HTTP/2
// server accepts cleartext connections whose preface has been read.
const unencryptedHTTP2 = "unencrypted_http2"

// prefaceTimeout bounds the wait for the client's connection preface after
// the 101 (net/http's HTTP/2 server waits as long for a preface).
const prefaceTimeout = 10 * time.Second

// clientPreface starts every HTTP/2 connection (RFC 7540 §3.5).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// markerHeader carries a per-connection random token on the synthetic
// stream-1 request, so that only that request is replaced by the original.
const markerHeader = "x-queue-proxy-h2c-upgrade"

// maxAuthority bounds the Host of an upgrade request, so that the stream-1
// HEADERS frame fits the smallest frame size; longer ones are served as
// HTTP/1.1.
const maxAuthority = 8 << 10

// Configure makes srv serve HTTP/1.1 and both forms of h2c, wrapping
// srv.Handler with the upgrade handshake. Call it before serving.
func Configure(srv *http.Server) {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = p
	srv.Handler = &upgradeHandler{srv: srv, next: srv.Handler}
}

// upgradeHandler performs the `Upgrade: h2c` handshake for requests that
// ask for it and passes every other request to next.
type upgradeHandler struct {
	srv  *http.Server
	next http.Handler
}

func (h *upgradeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 || !headerHasToken(r.Header["Upgrade"], "h2c") {
		h.next.ServeHTTP(w, r)
		return
	}
	settings, ok := upgradeSettings(r)
	serve := h.srv.TLSNextProto[unencryptedHTTP2]
	if !ok || serve == nil {
		removeUpgradeHeaders(r.Header)
		h.next.ServeHTTP(w, r)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		removeUpgradeHeaders(r.Header)
		h.next.ServeHTTP(w, r)
		return
	}
	defer conn.Close()
	uc, token, err := upgrade(conn, brw, r, settings)
	if err != nil {
		return // the client broke the handshake; nothing to answer on
	}
	removeUpgradeHeaders(r.Header)
	sh := &streamHandler{next: h.next, orig: r, token: token, ctx: context.WithoutCancel(r.Context())}
	// The server reads the connection through the tls.Conn wrapper's
	// UnencryptedNetConn, as for the prior-knowledge connections net/http
	// hands over itself; no TLS is spoken.
	serve(h.srv, tls.Client(unencryptedConn{conn: uc}, nil), sh)
}

// upgrade answers 101 on conn, reads the client's preface and returns the
// connection to give the HTTP/2 server, with the synthetic SETTINGS and
// stream-1 HEADERS frames ahead of the client's frames, and the token that
// marks stream 1.
func upgrade(conn net.Conn, brw *bufio.ReadWriter, r *http.Request, settings []byte) (net.Conn, string, error) {
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
		return nil, "", err
	}
	if err := brw.Flush(); err != nil {
		return nil, "", err
	}
	conn.SetReadDeadline(time.Now().Add(prefaceTimeout)) //nolint:errcheck // a failed read reports it
	var preface [len(clientPreface)]byte
	if _, err := io.ReadFull(brw, preface[:]); err != nil {
		return nil, "", err
	}
	if string(preface[:]) != clientPreface {
		return nil, "", errBadPreface
	}
	conn.SetReadDeadline(time.Time{}) //nolint:errcheck // as above

	var t [16]byte
	rand.Read(t[:])
	token := hex.EncodeToString(t[:])
	prefix := appendSettingsFrame(nil, settings)
	prefix = appendUpgradeHeadersFrame(prefix, r.Method, r.Host, token)
	return newUpgradedConn(conn, prefix, brw.Reader), token, nil
}

// streamHandler serves one upgraded connection's requests: stream 1, which
// carries the marker token, is served with the original HTTP/1.1 request;
// every other request is passed on with any marker header removed.
type streamHandler struct {
	next  http.Handler
	orig  *http.Request
	token string
	ctx   context.Context
	used  atomic.Bool
}

// BaseContext is the context of the connection's requests: the upgrade
// request's values (server, local address) without its cancellation.
func (h *streamHandler) BaseContext() context.Context { return h.ctx }

func (h *streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	marker := r.Header.Get(markerHeader)
	r.Header.Del(markerHeader)
	if marker != "" && subtle.ConstantTimeCompare([]byte(marker), []byte(h.token)) == 1 && h.used.CompareAndSwap(false, true) {
		r = h.orig.WithContext(r.Context())
	}
	h.next.ServeHTTP(w, r)
}

// upgradeSettings returns the decoded HTTP2-Settings payload when r may be
// upgraded: HTTP/1.1, not CONNECT, no body, a Host of at most maxAuthority
// bytes, `HTTP2-Settings` listed in Connection, and exactly one well-formed
// HTTP2-Settings header.
func upgradeSettings(r *http.Request) ([]byte, bool) {
	if !r.ProtoAtLeast(1, 1) || r.Method == http.MethodConnect || r.ContentLength != 0 || len(r.TransferEncoding) != 0 ||
		len(r.Host) > maxAuthority || len(r.Method) > maxAuthority {
		return nil, false
	}
	if !headerHasToken(r.Header["Connection"], "HTTP2-Settings") {
		return nil, false
	}
	vs := r.Header["Http2-Settings"]
	if len(vs) != 1 {
		return nil, false
	}
	return decodeSettings(vs[0])
}

// removeUpgradeHeaders deletes what the h2c handshake consumes: the h2c
// token of Upgrade, HTTP2-Settings, and Connection's Upgrade (when no other
// upgrade is left) and HTTP2-Settings tokens.
func removeUpgradeHeaders(h http.Header) {
	h.Del("Http2-Settings")
	if up := removeToken(h["Upgrade"], "h2c"); len(up) == 0 {
		h.Del("Upgrade")
		h["Connection"] = removeToken(removeToken(h["Connection"], "HTTP2-Settings"), "Upgrade")
	} else {
		h["Upgrade"] = up
		h["Connection"] = removeToken(h["Connection"], "HTTP2-Settings")
	}
	if len(h["Connection"]) == 0 {
		h.Del("Connection")
	}
}

// headerHasToken reports whether a comma-separated header contains token
// (case-insensitively).
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// removeToken returns values without token, one value per remaining
// token list; nil if nothing is left.
func removeToken(values []string, token string) []string {
	var out []string
	for _, v := range values {
		var kept []string
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, token) {
				kept = append(kept, t)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, ", "))
		}
	}
	return out
}

// unencryptedConn is the net.Conn inside the *tls.Conn handed to the HTTP/2
// server: net/http's HTTP/2 server takes the real connection from
// UnencryptedNetConn, and every other method panics (the nil embedded
// interface), so that it can never be used as if it were encrypted.
type unencryptedConn struct {
	net.Conn
	conn net.Conn
}

func (c unencryptedConn) UnencryptedNetConn() net.Conn { return c.conn }
