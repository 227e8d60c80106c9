package queue

import (
	"net/http"
	"strings"
)

// Canonical header keys, looked up directly in the map (equivalent to
// Header.Get for canonical keys, without re-canonicalising them).
const (
	hdrForwarded       = "Forwarded"
	hdrXForwardedFor   = "X-Forwarded-For"
	hdrXForwardedProto = "X-Forwarded-Proto"
	hdrXForwardedHost  = "X-Forwarded-Host"
)

// ForwardedShimHandler returns a handler that derives an RFC 7239
// Forwarded header from the de-facto X-Forwarded-* headers, then calls next
// (CONTRACT.md §3.5).
//
// Contract:
//   - If the request has a non-empty Forwarded header it is passed on
//     untouched. (An empty Forwarded value carries nothing and is treated
//     as absent, like the X-Forwarded-* headers below.)
//   - Otherwise, if the first value of X-Forwarded-For, X-Forwarded-Proto
//     or X-Forwarded-Host (what Header.Get returns) is non-empty, Forwarded
//     is set to "for=<node1>[;host=<xfh>][;proto=<xfp>][, for=<node2>]...",
//     where the nodes are the X-Forwarded-For value split on "," with
//     surrounding white space trimmed. ";" separators appear only after a
//     preceding part, so a lone X-Forwarded-Host gives "host=h".
//   - A node containing ":" is taken to be IPv6 and written "\"[node]\"".
//   - Empty nodes (e.g. from "a, ,b") are kept, as Knative keeps them, and
//     written as a bare "for=". Host and proto values are copied verbatim.
//     X-Forwarded-By is ignored. Nothing else in the request is changed,
//     and the response is not touched.
//
// The value is built in one pre-sized strings.Builder: one allocation for
// the string and one for the header's []string.
func ForwardedShimHandler(next http.Handler) http.Handler {
	return &forwardedShim{next: next}
}

type forwardedShim struct {
	next http.Handler
}

func (s *forwardedShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	if headerFirst(h, hdrForwarded) == "" {
		xff, xfp, xfh := headerFirst(h, hdrXForwardedFor), headerFirst(h, hdrXForwardedProto), headerFirst(h, hdrXForwardedHost)
		if xff != "" || xfp != "" || xfh != "" {
			h[hdrForwarded] = []string{forwardedValue(xff, xfh, xfp)}
		}
	}
	s.next.ServeHTTP(w, r)
}

// headerFirst is Header.Get for a canonical key.
func headerFirst(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// forwardedValue builds the Forwarded value; at least one argument is
// non-empty.
func forwardedValue(xff, xfh, xfp string) string {
	nodes := 0
	if xff != "" {
		nodes = strings.Count(xff, ",") + 1
	}
	// Per node at most: `for="[` + `]"` + `, `.
	size := len(xff) + nodes*len(`, for="[]"`) + len(";host=") + len(xfh) + len(";proto=") + len(xfp)

	var b strings.Builder
	b.Grow(size)
	rest, more := "", false
	if xff != "" {
		var node string
		node, rest, more = strings.Cut(xff, ",")
		writeForNode(&b, node)
	}
	if xfh != "" {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString("host=")
		b.WriteString(xfh)
	}
	if xfp != "" {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString("proto=")
		b.WriteString(xfp)
	}
	for more {
		var node string
		node, rest, more = strings.Cut(rest, ",")
		b.WriteString(", ")
		writeForNode(&b, node)
	}
	return b.String()
}

// writeForNode writes one for= element, quoting and bracketing IPv6.
func writeForNode(b *strings.Builder, node string) {
	node = strings.TrimSpace(node)
	b.WriteString("for=")
	if strings.IndexByte(node, ':') >= 0 {
		b.WriteString(`"[`)
		b.WriteString(node)
		b.WriteString(`]"`)
		return
	}
	b.WriteString(node)
}
