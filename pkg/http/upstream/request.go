package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// RequestHead writes the head of the upstream request for an inbound one,
// byte for byte as the header-pruning httputil.ReverseProxy (Director mode,
// no host override) and net/http's Transport (DisableCompression, keep-alives
// on, no proxy) would write it.
//
// A RequestHead is read-only once built and safe for concurrent use.
type RequestHead struct {
	// Pruned are canonical header keys never sent (the revision headers).
	// They are matched exactly, as the Director's delete does.
	Pruned []string
	// Target is the upstream host:port. It is sent as the Host header when
	// the request has none (r.Host == ""), as net/http falls back to the
	// URL's host, which the Director set to the target.
	Target string
}

// reqStackKeys is how many header fields Write sorts without allocating.
const reqStackKeys = 32

// reqField is one header field to write: its key and its values.
type reqField struct {
	key    string
	values []string
}

// reqTrailers is the value of the Te header the proxy re-adds.
var reqTrailers = []string{"trailers"}

// Write writes to bw the request line and headers net/http would send for r
// proxied by the header-pruning ReverseProxy to the user container:
//
//   - "<Method> <RequestURI> HTTP/1.1" (Method "" is GET; the RequestURI is
//     r.URL's escaped path, "/" when empty, and "?" RawQuery when there is
//     one or ForceQuery);
//   - "Host: " r.Host (h.Target when empty), punycoded, emptied when it is
//     not a valid Host, IPv6 zone removed;
//   - "User-Agent: " its first value, trimmed, unless absent or empty;
//   - the body framing: "Transfer-Encoding: chunked" for a body of unknown
//     length, "Content-Length: n" for n > 0, "Content-Length: 0" for a
//     POST, PUT or PATCH without a body, nothing otherwise;
//   - r.Header's other fields in byte-wise key order, each value on its own
//     line, trimmed of ASCII space: minus the Pruned keys, the hop-by-hop
//     keys, the keys the Connection header lists, Host and Content-Length;
//     with "Te: trailers" when the inbound Te lists trailers, and
//     X-Forwarded-For set to its prior values joined by ", " then clientIP
//     (left out when the key is present with a nil value);
//   - "\r\n".
//
// clientIP is the host part of r.RemoteAddr (net.SplitHostPort), which the
// ReverseProxy appends. Write reads r.Header but never writes to it.
//
// It returns whether the body must be sent chunked. The body is r.Body when
// r.ContentLength != 0 and nothing otherwise (for an Eligible request, r.Body
// is then nil or http.NoBody, so WriteBody(bw, r.Body, ...) is right either
// way); when it is not chunked, r.Body must yield exactly r.ContentLength
// bytes, as a server's request body does.
//
// Write fails, having written nothing, where net/http's Transport would fail
// (an invalid method, header name or value, a control byte in the URL) and
// on framings Eligible rejects. Any other error is bw's, after which bw
// holds a partial head.
func (h *RequestHead) Write(bw *bufio.Writer, r *http.Request, clientIP string) (chunked bool, err error) {
	length, chunked, err := reqFraming(r)
	if err != nil {
		return false, err
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !httpguts.ValidHeaderFieldName(method) { // a token
		return false, fmt.Errorf("upstream: invalid method %q", method)
	}
	if method == http.MethodConnect { // its request line differs; not proxied here
		return false, errors.New("upstream: CONNECT request")
	}
	if r.URL == nil || r.URL.Opaque != "" {
		return false, errors.New("upstream: request URL is nil or opaque")
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	withQuery := r.URL.ForceQuery || r.URL.RawQuery != ""
	if reqHasCTL(path) || reqHasCTL(r.URL.RawQuery) {
		return false, errors.New("upstream: control character in request URL")
	}
	host := r.Host
	if host == "" {
		host = h.Target
	}
	if host, err = httpguts.PunycodeHostPort(host); err != nil {
		return false, err
	}
	if !httpguts.ValidHostHeader(host) {
		host = "" // net/http sends an empty Host rather than a bad one
	}
	hostStart, hostEnd := reqSplitZone(host)

	var stack [reqStackKeys]reqField
	fields, userAgent, err := h.fields(stack[:0], r.Header, clientIP)
	if err != nil {
		return false, err
	}
	reqSortFields(fields)

	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if withQuery {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(hostStart)
	bw.WriteString(hostEnd)
	bw.WriteString("\r\n")
	if userAgent != "" {
		reqWriteField(bw, "User-Agent", userAgent)
	}
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case length > 0 || reqWantsZeroLength(method):
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), length, 10))
		bw.WriteString("\r\n")
	}
	for _, f := range fields {
		if f.key == "X-Forwarded-For" {
			reqWriteXFF(bw, f.values, clientIP)
			continue
		}
		for _, v := range f.values {
			reqWriteField(bw, f.key, reqTrim(v))
		}
	}
	// bufio.Writer errors are sticky: the last write reports any earlier one.
	_, err = bw.WriteString("\r\n")
	return chunked, err
}

// fields appends to dst the header fields of hdr the proxy leaves for
// writeSubset (unsorted), with Te and X-Forwarded-For as the proxy sets them,
// and returns the User-Agent to send. It validates every field left in the
// outbound map, as the Transport does.
func (h *RequestHead) fields(dst []reqField, hdr http.Header, clientIP string) (_ []reqField, userAgent string, err error) {
	// The Director deletes the pruned keys before the hop-by-hop headers
	// are removed, so a pruned Connection lists nothing.
	conn := hdr["Connection"]
	if h.pruned("Connection") {
		conn = nil
	}
	xffSeen, xffOmitted := false, false
	for k, vv := range hdr {
		if h.pruned(k) || reqHopByHop(k) || reqListed(conn, k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, "", fmt.Errorf("upstream: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, "", fmt.Errorf("upstream: invalid header field value for %q", k)
			}
		}
		switch k {
		case "User-Agent":
			if len(vv) > 0 {
				userAgent = reqTrim(vv[0])
			}
			continue
		case "Host", "Content-Length": // written from r.Host and the framing
			continue
		case "X-Forwarded-For":
			xffSeen = true
			if vv == nil { // nil means: do not populate (httputil)
				xffOmitted = true
				continue
			}
		}
		dst = append(dst, reqField{k, vv})
	}
	if !xffSeen {
		dst = append(dst, reqField{"X-Forwarded-For", nil})
	}
	if !xffOmitted && !httpguts.ValidHeaderFieldValue(clientIP) {
		return nil, "", errors.New(`upstream: invalid header field value for "X-Forwarded-For"`)
	}
	// The proxy looks at the inbound Te, before any pruning.
	if httpguts.HeaderValuesContainsToken(hdr["Te"], "trailers") {
		dst = append(dst, reqField{"Te", reqTrailers})
	}
	return dst, userAgent, nil
}

// reqSortFields sorts fields by key, byte-wise, as Header.writeSubset does
// (keys are unique). A plain insertion sort is the fastest for the usual
// dozen fields or fewer.
func reqSortFields(fields []reqField) {
	if len(fields) > 12 {
		slices.SortFunc(fields, func(a, b reqField) int { return strings.Compare(a.key, b.key) })
		return
	}
	for i := 1; i < len(fields); i++ {
		for j := i; j > 0 && fields[j].key < fields[j-1].key; j-- {
			fields[j], fields[j-1] = fields[j-1], fields[j]
		}
	}
}

// pruned reports whether k is one of h.Pruned.
func (h *RequestHead) pruned(k string) bool {
	for _, p := range h.Pruned {
		if k == p {
			return true
		}
	}
	return false
}

// reqFraming returns the outbound body's length (0: none) and whether it is
// chunked, as httputil.ReverseProxy and net/http's transferWriter decide.
func reqFraming(r *http.Request) (length int64, chunked bool, err error) {
	switch {
	case r.ContentLength == 0: // the proxy sends a nil Body
		return 0, false, nil
	case r.Body == nil || r.Body == http.NoBody:
		return 0, false, errors.New("upstream: ContentLength set without a body")
	case len(r.TransferEncoding) > 0:
		if len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked" {
			return -1, true, nil
		}
		return 0, false, errors.New("upstream: unsupported Transfer-Encoding")
	case r.ContentLength > 0:
		return r.ContentLength, false, nil
	case r.Method == http.MethodConnect || reqUsuallyBodiless(r.Method):
		// net/http sends CONNECT bodies unframed, and probes the body of a
		// GET-like request for a first byte with a timer.
		return 0, false, errors.New("upstream: body of unknown length not framed as net/http would")
	default:
		return -1, true, nil
	}
}

// reqUsuallyBodiless lists the methods whose body of unknown length
// net/http's Transport probes before choosing chunked or no body.
func reqUsuallyBodiless(method string) bool {
	switch method {
	case "", "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		return true
	}
	return false
}

// reqWantsZeroLength reports whether net/http writes "Content-Length: 0"
// for a request of this method without a body.
func reqWantsZeroLength(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// reqHopByHop reports whether k is one of the hop-by-hop headers
// httputil.ReverseProxy always removes.
func reqHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// reqListed reports whether the Connection values conn name key: a
// comma-separated, space-trimmed token that canonicalizes to key.
func reqListed(conn []string, key string) bool {
	for _, v := range conn {
		for len(v) > 0 {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if tok = reqTrim(tok); tok != "" && reqCanonicalEqual(key, tok) {
				return true
			}
		}
	}
	return false
}

// reqCanonicalEqual reports whether key == http.CanonicalHeaderKey(tok),
// without allocating.
func reqCanonicalEqual(key, tok string) bool {
	if len(key) != len(tok) {
		return false
	}
	if !httpguts.ValidHeaderFieldName(tok) {
		return key == tok // not canonicalized
	}
	upper := true
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if key[i] != c {
			return false
		}
		upper = c == '-'
	}
	return true
}

// reqSplitZone returns host without its IPv6 zone ("[fe80::1%eth0]:80"
// becomes "[fe80::1]:80") as two parts to write one after the other.
func reqSplitZone(host string) (start, end string) {
	if !strings.HasPrefix(host, "[") {
		return host, ""
	}
	i := strings.LastIndexByte(host, ']')
	if i < 0 {
		return host, ""
	}
	j := strings.LastIndexByte(host[:i], '%')
	if j < 0 {
		return host, ""
	}
	return host[:j], host[i:]
}

// reqWriteXFF writes X-Forwarded-For as the proxy sets it: the prior values
// joined by ", ", then ", " and clientIP, the whole trimmed of ASCII space.
func reqWriteXFF(bw *bufio.Writer, prior []string, clientIP string) {
	part := func(i int) string { // the parts of the joined value, in order
		switch {
		case i == 2*len(prior):
			return clientIP
		case i%2 == 1:
			return ", "
		}
		return prior[i/2]
	}
	n := 2*len(prior) + 1
	// Leading and trailing space may span parts: find the trimmed range.
	first, from := 0, 0
	for ; first < n; first, from = first+1, 0 {
		p := part(first)
		for from < len(p) && reqSpace(p[from]) {
			from++
		}
		if from < len(p) {
			break
		}
	}
	last, to := n-1, 0
	for ; last >= first; last-- {
		p := part(last)
		to = len(p)
		for to > 0 && reqSpace(p[to-1]) {
			to--
		}
		if to > 0 {
			break
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	for i := first; i <= last; i++ {
		p := part(i)
		if i == last {
			p = p[:to]
		}
		if i == first {
			p = p[from:]
		}
		bw.WriteString(p)
	}
	bw.WriteString("\r\n")
}

// reqWriteField writes one "key: value" line.
func reqWriteField(bw *bufio.Writer, key, value string) {
	bw.WriteString(key)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}

// reqTrim is textproto.TrimString: s without leading and trailing ASCII
// space.
func reqTrim(s string) string {
	for len(s) > 0 && reqSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && reqSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func reqSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// reqHasCTL reports whether s holds an ASCII control byte.
func reqHasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// Eligible reports whether r can take the lean path: whether Write and
// WriteBody put on the wire exactly what the ReverseProxy and net/http's
// Transport would, and the exchange is a plain request and response. It
// rejects:
//
//   - anything but HTTP/1.x inbound (ProtoMajor 1);
//   - CONNECT;
//   - a nil or opaque URL (the ReverseProxy would fail or send it as is);
//   - a parsed Form (the ReverseProxy then rewrites the query);
//   - an Upgrade header or "upgrade" in Connection (switching protocols);
//   - an Expect header (100-continue waits; others are refused inbound);
//   - request trailers: a Trailer header or a non-empty r.Trailer;
//   - a body (ContentLength != 0) with a Transfer-Encoding other than
//     exactly "chunked";
//   - a ContentLength != 0 with a nil or http.NoBody Body, or a body with
//     ContentLength 0 that is not http.NoBody (the proxy would drop it,
//     WriteBody would not);
//   - a body of unknown length that is not chunked on a GET-like method
//     (net/http probes it with a 200ms timer);
//   - a RemoteAddr net.SplitHostPort rejects (no X-Forwarded-For is added).
//
// Invalid header names or values are not checked here: Write fails on them,
// as the Transport does.
func Eligible(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.Method == http.MethodConnect ||
		r.URL == nil || r.URL.Opaque != "" || r.Form != nil {
		return false
	}
	hdr := r.Header
	if _, ok := hdr["Upgrade"]; ok {
		return false
	}
	if _, ok := hdr["Expect"]; ok {
		return false
	}
	if _, ok := hdr["Trailer"]; ok || len(r.Trailer) > 0 {
		return false
	}
	if httpguts.HeaderValuesContainsToken(hdr["Connection"], "upgrade") {
		return false
	}
	if r.ContentLength == 0 {
		if r.Body != nil && r.Body != http.NoBody {
			return false
		}
	} else if _, _, err := reqFraming(r); err != nil {
		return false
	}
	if _, _, err := net.SplitHostPort(r.RemoteAddr); err != nil {
		return false
	}
	return true
}

// WriteBody copies the request body to bw with the framing Write chose:
// as is when chunked is false, otherwise in chunked encoding, one chunk per
// Read (net/http's sizes when buf is 32 KiB) flushed as it is written, then
// the last chunk with no trailers. buf is the copy buffer and must not be
// empty.
//
// A nil body or http.NoBody writes nothing (only the last chunk when
// chunked). Otherwise bw is flushed first, as net/http does, so that the
// head reaches the upstream before WriteBody blocks on the body.
//
// With chunked false, body must yield exactly the Content-Length Write sent.
// The caller flushes bw after WriteBody. Errors are the body's (its Read
// returned other than io.EOF) or bw's.
func WriteBody(bw *bufio.Writer, body io.Reader, chunked bool, buf []byte) error {
	if len(buf) == 0 {
		panic("upstream: WriteBody with an empty buffer")
	}
	if body != nil && body != http.NoBody {
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := reqCopy(bw, body, chunked, buf); err != nil {
			return err
		}
	}
	if chunked {
		_, err := bw.WriteString("0\r\n\r\n")
		return err
	}
	return nil
}

// reqCopy copies body to bw until io.EOF, each Read as a chunk when chunked.
func reqCopy(bw *bufio.Writer, body io.Reader, chunked bool, buf []byte) error {
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if err := reqWriteData(bw, buf[:n], chunked); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// reqWriteData writes p, as one flushed chunk when chunked.
func reqWriteData(bw *bufio.Writer, p []byte, chunked bool) error {
	if !chunked {
		_, err := bw.Write(p)
		return err
	}
	bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(len(p)), 16))
	bw.WriteString("\r\n")
	bw.Write(p)
	bw.WriteString("\r\n")
	return bw.Flush()
}
