package h1server

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/queue-proxy/queue-proxy/pkg/http/internal/ascii"
)

// head is a request head the fast path serves: HTTP/1.1, a known method,
// an origin-form target, one valid Host, at most one Content-Length and
// nothing that changes how the message is framed or answered.
type head struct {
	method, target string
	url            url.URL
	header         http.Header // canonical keys, without Host, as net/http builds it
	host           string
	contentLength  int64
	close          bool // Connection: close (http.Request.Close)
	// firstConnection is the first Connection value: net/http also closes
	// after the response when it has the token "close" in a looser sense.
	firstConnection string
}

// methods are the request methods of the fast path, interned.
var methods = map[string]string{
	"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT",
	"PATCH": "PATCH", "DELETE": "DELETE", "OPTIONS": "OPTIONS",
}

// generic are the request headers that send a request to the generic
// server: they change the framing (Transfer-Encoding, Trailer), ask for an
// interim answer (Expect), switch protocols (Upgrade, HTTP2-Settings), or
// are rewritten by net/http (Pragma, for Cache-Control).
var genericHeaders = map[string]bool{
	"Transfer-Encoding": true, "Trailer": true, "Expect": true,
	"Upgrade": true, "Http2-Settings": true, "Pragma": true,
}

const proto11 = " HTTP/1.1"

// parse outcomes.
type outcome int

const (
	needMore outcome = iota // every complete line is fine; the head goes on
	complete                // a fast-path head of n bytes
	generic                 // for the generic server, now
)

// parseHead parses the request head at the start of b, which may be
// incomplete. It says generic as soon as a complete line is one the fast
// path does not serve, valid or not (net/http parses line by line and
// answers a bad line at once, so waiting for the rest would differ): the
// generic server then reads the same bytes and answers them exactly as it
// would have. A complete head ends with an empty line; every line of a
// fast-path head ends with CRLF.
func parseHead(b []byte) (h head, n int, o outcome) {
	line, rest, o := nextLine(b)
	if o != complete {
		return h, 0, o
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || !bytes.HasSuffix(line, []byte(proto11)) {
		return h, 0, generic
	}
	m, known := methods[string(line[:sp])]
	if !known || sp+1 > len(line)-len(proto11) {
		return h, 0, generic // unknown method, or no target
	}
	target := line[sp+1 : len(line)-len(proto11)]
	if len(target) == 0 || target[0] != '/' {
		return h, 0, generic
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return h, 0, generic
		}
	}

	hosts, lengths := 0, 0
	var firstConnection string
	var connections []string
	for {
		line, rest, o = nextLine(rest)
		if o != complete {
			return h, 0, o
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, 0, generic
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !validName(name) || !validValue(value) {
			return h, 0, generic
		}
		key := canonicalKey(name)
		if genericHeaders[key] {
			return h, 0, generic
		}
		switch key {
		case "Host":
			hosts++
			if hosts > 1 || !httpguts.ValidHostHeader(string(value)) {
				return h, 0, generic
			}
		case "Content-Length":
			lengths++
			n, valid := parseLength(value)
			if lengths > 1 || !valid {
				return h, 0, generic
			}
			h.contentLength = n
		}
	}
	if hosts != 1 {
		return h, 0, generic
	}

	// The head is complete and served here: build it.
	h.method = m
	h.target = string(target)
	if !parseTarget(h.target, &h.url) {
		u, err := url.ParseRequestURI(h.target)
		if err != nil {
			return h, 0, generic
		}
		h.url = *u
	}
	h.header = make(http.Header, 8)
	_, rest, _ = nextLine(b)
	for {
		line, rest, _ = nextLine(rest)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		key, v := canonicalKey(line[:colon]), string(trimOWS(line[colon+1:]))
		switch key {
		case "Host":
			h.host = v
			continue
		case "Connection":
			if connections == nil {
				firstConnection = v
			}
			connections = append(connections, v)
		}
		h.header[key] = append(h.header[key], v)
	}
	h.close = httpguts.HeaderValuesContainsToken(connections, "close")
	h.firstConnection = firstConnection
	return h, len(b) - len(rest), complete
}

// nextLine splits the first line off b: complete with the line (without
// its CRLF) and the rest; needMore if b has no line end yet; generic for a
// line ended by a bare LF.
func nextLine(b []byte) (line, rest []byte, o outcome) {
	i := bytes.IndexByte(b, '\n')
	switch {
	case i < 0:
		return nil, b, needMore
	case i == 0 || b[i-1] != '\r':
		return nil, b, generic
	}
	return b[:i-1], b[i+1:], complete
}

var crlf = []byte("\r\n")

// trimOWS trims spaces and tabs, as net/textproto does.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// validName reports whether b is a token (RFC 9110 field-name).
func validName(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validValue reports whether b holds only visible bytes, spaces, tabs and
// obs-text.
func validValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length of 1 to 18 digits.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// canonicalKey is textproto's canonical form of the token b (first letter
// and letters after '-' upper case, others lower case), interned for the
// common request headers.
func canonicalKey(b []byte) string {
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	buf := make([]byte, len(b))
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	k := string(buf)
	if c, ok := commonKeys[k]; ok {
		return c
	}
	return k
}

// commonKeys interns request header names in their canonical and
// lower-case spellings.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Cookie", "Forwarded", "Host",
		"If-Modified-Since", "If-None-Match", "Knative-Serving-Namespace", "Knative-Serving-Revision",
		"K-Network-Hash", "K-Network-Probe", "K-Proxy-Request", "Origin", "Referer", "Traceparent",
		"Tracestate", "User-Agent", "X-B3-Sampled", "X-B3-Spanid", "X-B3-Traceid",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
	} {
		m[k] = k
		m[string(bytes.ToLower([]byte(k)))] = k
	}
	return m
}()

// hasToken reports whether v contains token t, in any case, bounded by
// the start or end of v, spaces, tabs or commas: net/http's rule for a
// request's first Connection value.
func hasToken(v, t string) bool {
	for i := 0; i+len(t) <= len(v); i++ {
		if i > 0 && !isBoundary(v[i-1]) {
			continue
		}
		if end := i + len(t); end < len(v) && !isBoundary(v[end]) {
			continue
		}
		if ascii.EqualFold(v[i:i+len(t)], t) {
			return true
		}
	}
	return false
}

func isBoundary(c byte) bool { return c == ' ' || c == ',' || c == '\t' }

// parseTarget sets *u to what url.ParseRequestURI returns for an
// origin-form target made of bytes it leaves as they are: a path of
// unreserved characters and the sub-delimiters a path keeps unescaped (so
// that Path is the target's path and RawPath is empty), then an optional
// query of printable bytes, taken raw. It reports false, leaving *u alone,
// for any other target: ParseRequestURI decides those.
func parseTarget(t string, u *url.URL) bool {
	if t == "" || t[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(t, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if query[i] <= ' ' || query[i] >= 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPathByte marks the bytes url.URL keeps as they are in a path
// (neither escaped nor special): letters, digits, "-._~", "/" and the
// sub-delimiters "$&+,:;=@".
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~/$&+,:;=@" {
		t[c] = true
	}
	return t
}()
