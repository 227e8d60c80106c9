package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/queue-proxy/queue-proxy/pkg/http/internal/ascii"
)

// MaxResponseHeadBytes bounds one response head: its status line, fields
// and blank line, terminators included. It is the default of net/http's
// Transport.MaxResponseHeaderBytes, which the Transport enforces below its
// bufio.Reader (http.ReadResponse itself has no limit).
const MaxResponseHeadBytes = 10 << 20

// Response is a response head read from the user container. It is reused
// across responses (Reset, which ReadResponse calls first), so its Header
// and Trailer maps and their value slices are reused too: they, and the
// reader Body returns, are valid only until the next Reset or ReadResponse.
// Copy what must outlive that. The zero Response is ready to use.
//
// After a successful ReadResponse every exported field holds what
// http.ReadResponse would put in the field of the same name, for the same
// bytes and request method.
type Response struct {
	StatusCode int    // 200; any three digits net/http accepts
	Status     string // "200 OK", as net/http's Response.Status
	Proto      string // "HTTP/1.1"
	ProtoMajor int
	ProtoMinor int

	// Header has canonical keys (keys with a space are kept as sent), the
	// values in order, trimmed. As net/http it holds neither
	// Transfer-Encoding, nor Trailer when the body is chunked, nor
	// Content-Length when chunked framing overrides it, nor Connection
	// when it says close from HTTP/1.1 on; repeated identical
	// Content-Length values are folded into one, and Pragma: no-cache adds
	// Cache-Control: no-cache when that is absent.
	Header http.Header

	ContentLength    int64    // -1 when unknown; for HEAD, the declared length
	TransferEncoding []string // nil or ["chunked"] (read-only)
	Close            bool     // the connection must close after this response

	// Trailer holds the keys the Trailer field declared, with nil values,
	// until the body's end; then also the values the trailer section sent
	// (it is nil when nothing was declared or sent), as net/http.
	Trailer http.Header

	br   *bufio.Reader // the reader the head came from; nil until one was read
	body respBody

	hdr, prevHdr  http.Header       // Header, and the last one for value reuse
	declared      http.Header       // Trailer's map when set
	trailerFields http.Header       // the trailer section being read
	keys          map[string]string // interned field names
	lastStatus    string
	lastProto     string
	te            [1]string

	limit int64  // bytes readLine may still read
	line  []byte // a line longer than br's buffer
	field []byte // a field with continuation lines
	key   []byte // a field name being canonicalized
}

// Retention bounds for the reused scratch space: anything larger is
// dropped at Reset rather than kept for the life of the Response.
const (
	respMaxKeptFields = 64
	respMaxKeptBytes  = 64 << 10
	respMaxKeyInterns = 128
	respMaxInternLen  = 64
)

var (
	errRespNoHead        = errors.New("upstream: Body called without a response head read successfully")
	errRespOtherReader   = errors.New("upstream: Body called with a reader other than the head's")
	errRespHeadTooLarge  = fmt.Errorf("upstream: response head exceeds %d bytes", MaxResponseHeadBytes)
	errRespTrailerEOF    = errors.New("upstream: unexpected EOF reading trailer")
	errRespLongTrailer   = errors.New("upstream: trailer longer than the read buffer")
	errRespChunkCRLF     = errors.New("upstream: malformed chunked encoding: no CRLF after chunk data")
	errRespChunkLong     = errors.New("upstream: chunk size line too long")
	errRespChunkLF       = errors.New("upstream: chunk size line ends with bare LF")
	errRespChunkCR       = errors.New("upstream: invalid CR in chunk size line")
	errRespChunkEmpty    = errors.New("upstream: empty chunk size")
	errRespChunkHex      = errors.New("upstream: invalid byte in chunk size")
	errRespChunkBig      = errors.New("upstream: chunk size too large")
	errRespChunkOverhead = errors.New("upstream: chunked encoding contains too much non-data")
)

// Reset empties r for the next response, keeping its maps and buffers.
func (r *Response) Reset() {
	if len(r.hdr) > 0 { // keep the last header's values for reuse
		if len(r.prevHdr) > respMaxKeptFields {
			r.prevHdr = nil
		}
		clear(r.prevHdr)
		r.hdr, r.prevHdr = r.prevHdr, r.hdr
	}
	if r.hdr == nil {
		r.hdr = make(http.Header)
	}
	r.declared = respEmptied(r.declared)
	r.trailerFields = respEmptied(r.trailerFields)
	*r = Response{
		Header: r.hdr, hdr: r.hdr, prevHdr: r.prevHdr,
		declared: r.declared, trailerFields: r.trailerFields, keys: r.keys,
		lastStatus: r.lastStatus, lastProto: r.lastProto,
		line: respKept(r.line), field: respKept(r.field), key: respKept(r.key),
	}
}

// respKept returns b emptied, or nil when it grew too large to keep.
func respKept(b []byte) []byte {
	if cap(b) > respMaxKeptBytes {
		return nil
	}
	return b[:0]
}

// respEmptied returns m cleared, or nil when it grew too large to keep.
func respEmptied(m http.Header) http.Header {
	if len(m) > respMaxKeptFields {
		return nil
	}
	clear(m)
	return m
}

// ReadResponse reads a response head from br for a request of method into
// resp (after resetting it), as http.ReadResponse(br, req) does for a req
// of that method, with the head bounded by MaxResponseHeadBytes. A 1xx
// response (other than 101) is returned as is; the caller reads the next
// head. After an error resp's fields are unspecified and br's position too.
// No bytes at all before EOF is io.ErrUnexpectedEOF, as net/http.
func ReadResponse(br *bufio.Reader, method string, resp *Response) error {
	resp.Reset()
	resp.limit = MaxResponseHeadBytes
	if err := resp.readStatusLine(br); err != nil {
		return err
	}
	if err := resp.readFields(br, resp.Header, resp.prevHdr); err != nil {
		return err
	}
	if err := resp.frame(method); err != nil {
		return err
	}
	resp.br = br
	return nil
}

// readStatusLine parses "HTTP/x.y ddd reason" with net/http's rules: the
// status is everything after the first space (leading spaces dropped), its
// first word is the code: three characters strconv.Atoi takes and that are
// not negative; the version must be HTTP/d.d.
func (r *Response) readStatusLine(br *bufio.Reader) error {
	line, err := r.readLine(br)
	if err != nil {
		return err
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return respBadLine("malformed HTTP response", line)
	}
	proto, status := line[:sp], bytes.TrimLeft(line[sp+1:], " ")
	code, _, _ := bytes.Cut(status, []byte(" "))
	if r.StatusCode, err = respParseStatusCode(code); err != nil {
		return err
	}
	var ok bool
	if r.ProtoMajor, r.ProtoMinor, ok = respParseVersion(proto); !ok {
		return respBadLine("malformed HTTP version", proto)
	}
	r.Proto = respInternProto(proto, &r.lastProto)
	r.Status = respInternStatus(status, &r.lastStatus)
	return nil
}

// respParseStatusCode accepts what strconv.Atoi accepts in three bytes (an
// optional sign and digits) when the value is not negative: "200", but
// also "+99" and "-00", as net/http.
func respParseStatusCode(b []byte) (int, error) {
	if len(b) != 3 {
		return 0, respBadLine("malformed HTTP status code", b)
	}
	digits, neg := b, false
	if b[0] == '+' || b[0] == '-' {
		digits, neg = b[1:], b[0] == '-'
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, respBadLine("malformed HTTP status code", b)
		}
		n = n*10 + int(c-'0')
	}
	if neg && n != 0 {
		return 0, respBadLine("malformed HTTP status code", b)
	}
	return n, nil
}

// respParseVersion parses "HTTP/d.d" (one digit each), as
// http.ParseHTTPVersion.
func respParseVersion(b []byte) (major, minor int, ok bool) {
	if len(b) != len("HTTP/1.1") || string(b[:5]) != "HTTP/" || b[6] != '.' ||
		!respIsDigit(b[5]) || !respIsDigit(b[7]) {
		return 0, 0, false
	}
	return int(b[5] - '0'), int(b[7] - '0'), true
}

func respIsDigit(c byte) bool { return '0' <= c && c <= '9' }

// respInternProto returns b as a string without allocating for the usual
// versions or a repeat of the last one.
func respInternProto(b []byte, last *string) string {
	switch string(b) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/1.0":
		return "HTTP/1.0"
	case *last:
		return *last
	}
	*last = string(b)
	return *last
}

// respStatusLines maps "200 OK" and the like to themselves, so that the
// usual status lines cost no allocation.
var respStatusLines = func() map[string]string {
	m := make(map[string]string)
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			s := strconv.Itoa(code) + " " + text
			m[s] = s
		}
	}
	return m
}()

func respInternStatus(b []byte, last *string) string {
	if s, ok := respStatusLines[string(b)]; ok {
		return s
	}
	if string(b) == *last {
		return *last
	}
	*last = string(b)
	return *last
}

// respBadLine is the error for a malformed line, quoting at most 80 bytes.
func respBadLine(what string, b []byte) error {
	if len(b) > 80 {
		b = b[:80]
	}
	return fmt.Errorf("upstream: %s %q", what, b)
}

// readLine reads a line ending in "\n" from br and returns it without the
// "\n" or "\r\n". The slice is valid until br is read again. A line that EOF
// cuts short is io.ErrUnexpectedEOF: net/http fails such a head too (the
// blank line that ends it never comes). Lines longer than br's buffer are
// gathered in r.line; all count against r.limit.
func (r *Response) readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.line = append(r.line[:0], line...)
		for err == bufio.ErrBufferFull && int64(len(r.line)) <= r.limit {
			line, err = br.ReadSlice('\n')
			r.line = append(r.line, line...)
		}
		line = r.line
	}
	if r.limit -= int64(len(line)); r.limit < 0 {
		return nil, errRespHeadTooLarge
	}
	if err != nil {
		return nil, respNoEOF(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// respNoEOF turns io.EOF, which means the peer stopped early, into
// io.ErrUnexpectedEOF.
func respNoEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readFields reads header fields up to and including the blank line into
// dst, with net/textproto's ReadMIMEHeader rules: the first line may not
// start with a space or tab; a line starting with them continues the one
// before (joined by one space, each part trimmed); each field needs a
// colon, a name of token bytes (a name with a space is kept as is, not
// canonicalized), and a value of field-content bytes; the value is trimmed
// of spaces and tabs. A value equal to the one at the same place in reuse
// is taken from there, and so are the value slices, to spare allocations.
func (r *Response) readFields(br *bufio.Reader, dst, reuse http.Header) error {
	if b, err := br.Peek(1); err == nil && respIsOWS(b[0]) {
		line, _ := r.readLine(br)
		return respBadLine("malformed MIME header initial line:", line)
	}
	for {
		line, err := r.readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if bytes.IndexByte(line, ':') < 0 {
			return respBadLine("malformed MIME header: missing colon:", line)
		}
		field, copied := respTrimOWS(line), false
		if br.Buffered() == 0 { // peeking would refill the buffer under line
			r.field, copied = append(r.field[:0], field...), true
			field = r.field
		}
		if b, err := br.Peek(1); err == nil && respIsOWS(b[0]) {
			if !copied {
				r.field = append(r.field[:0], field...)
			}
			if field, err = r.readContinuation(br); err != nil {
				return err
			}
		}
		if err := r.addField(dst, reuse, field); err != nil {
			return err
		}
	}
}

// readContinuation appends to the field in r.field the continuation lines
// that follow (obsolete line folding), each trimmed and after one space,
// and returns the whole field.
func (r *Response) readContinuation(br *bufio.Reader) ([]byte, error) {
	for {
		skipped := 0
		for b, err := br.Peek(1); err == nil && respIsOWS(b[0]); b, err = br.Peek(1) {
			br.Discard(1)
			skipped++
		}
		if skipped == 0 {
			return r.field, nil
		}
		if r.limit -= int64(skipped); r.limit < 0 {
			return nil, errRespHeadTooLarge
		}
		r.field = append(r.field, ' ')
		line, err := r.readLine(br)
		if err != nil {
			return nil, err
		}
		r.field = append(r.field, respTrimOWS(line)...)
	}
}

// addField validates "name: value" and appends the value to dst.
func (r *Response) addField(dst, reuse http.Header, field []byte) error {
	name, value, _ := bytes.Cut(field, []byte(":"))
	key, ok := r.canonicalKey(name)
	if !ok {
		return respBadLine("malformed MIME header line:", field)
	}
	for _, c := range value {
		if !respValidValueByte(c) {
			return respBadLine("malformed MIME header line:", field)
		}
	}
	value = respTrimLeftOWS(value)
	vals, seen := dst[key]
	if !seen && reuse != nil {
		vals = reuse[key][:0]
	}
	if n := len(vals); n < cap(vals) && vals[:n+1][n] == string(value) {
		vals = vals[:n+1]
	} else {
		vals = append(vals, string(value))
	}
	dst[key] = vals
	return nil
}

// canonicalKey returns the canonical form of a field name, as
// textproto.CanonicalMIMEHeaderKey, or the name as is when it holds a
// space; ok is false for an empty name or one with other non-token bytes.
func (r *Response) canonicalKey(name []byte) (key string, ok bool) {
	if len(name) == 0 {
		return "", false
	}
	spaced := false
	for _, c := range name {
		switch {
		case respTokenByte[c]:
		case c == ' ':
			spaced = true
		default:
			return "", false
		}
	}
	k := append(r.key[:0], name...)
	r.key = k
	if !spaced {
		upper := true
		for i, c := range k {
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			k[i] = c
			upper = c == '-'
		}
	}
	return r.intern(k), true
}

// intern returns k as a string, without allocating for common names or
// names this Response has seen before (up to a bound).
func (r *Response) intern(k []byte) string {
	if s, ok := r.keys[string(k)]; ok {
		return s
	}
	s, ok := respCommonKeys[string(k)]
	if !ok {
		s = string(k)
	}
	if len(r.keys) < respMaxKeyInterns && len(s) <= respMaxInternLen {
		if r.keys == nil {
			r.keys = make(map[string]string)
		}
		r.keys[s] = s
	}
	return s
}

// respCommonKeys interns canonical names of common response fields.
var respCommonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept-Ranges", "Age", "Alt-Svc", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires",
		"Keep-Alive", "Last-Modified", "Link", "Location", "Pragma",
		"Retry-After", "Server", "Set-Cookie", "Strict-Transport-Security",
		"Trailer", "Transfer-Encoding", "Upgrade", "Vary", "Via",
		"Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options",
		"X-Powered-By", "X-Request-Id", "X-Xss-Protection",
	} {
		m[k] = k
	}
	return m
}()

// respTokenByte reports the bytes of an RFC 9110 token (tchar).
var respTokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// respValidValueByte reports whether c may appear in a field value: a
// visible ASCII character, space, tab, or obs-text (0x80 and up).
func respValidValueByte(c byte) bool {
	return c == '\t' || (0x20 <= c && c != 0x7f)
}

func respIsOWS(c byte) bool { return c == ' ' || c == '\t' }

// respTrimOWS returns b without leading and trailing spaces and tabs.
func respTrimOWS(b []byte) []byte {
	return respTrimLeftOWS(respTrimRightOWS(b))
}

func respTrimLeftOWS(b []byte) []byte {
	for len(b) > 0 && respIsOWS(b[0]) {
		b = b[1:]
	}
	return b
}

func respTrimRightOWS(b []byte) []byte {
	for len(b) > 0 && respIsOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// frame applies net/http's transfer rules to the parsed head for a request
// of method: the Close flag, Transfer-Encoding, Content-Length and the
// declared trailers, editing Header as net/http does, and sets up the body.
func (r *Response) frame(method string) error {
	h := r.Header
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = append(r.prevHdr["Cache-Control"][:0], "no-cache")
		}
	}
	r.Close = r.shouldClose()

	chunked, err := r.chunked()
	if err != nil {
		return err
	}
	if chunked {
		r.te[0] = "chunked"
		r.TransferEncoding = r.te[:1:1]
	}

	length, declared, err := respContentLength(h)
	if err != nil {
		return err
	}
	noBody := method == "HEAD" || !respBodyAllowed(r.StatusCode)
	realLength := int64(-1) // the body's length: -1 when chunked or until close
	switch {
	case noBody:
		realLength = 0
	case chunked:
		delete(h, "Content-Length")
	case declared:
		realLength = length
	}
	r.ContentLength = realLength
	if method == "HEAD" {
		r.ContentLength = -1
		if declared {
			r.ContentLength = length
		}
	}

	if err := r.declareTrailer(chunked); err != nil {
		return err
	}

	switch {
	case chunked && !noBody:
		r.body.mode = respChunked
	case chunked, realLength == 0:
		r.body.mode = respNone
	case realLength > 0:
		r.body.mode = respLength
		r.body.left = realLength
	default: // no length and a body is allowed: it ends when the peer closes
		r.Close = true
		r.body.mode = respUntilEOF
	}
	r.body.done = r.body.mode == respNone
	return nil
}

// shouldClose reports whether the connection closes after this response,
// as net/http: always below HTTP/1; for HTTP/1.0 unless Connection has
// keep-alive (and not close); otherwise when Connection has close, which
// then leaves Header.
func (r *Response) shouldClose() bool {
	if r.ProtoMajor < 1 {
		return true
	}
	conn := r.Header["Connection"]
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	}
	if hasClose {
		delete(r.Header, "Connection")
	}
	return hasClose
}

// chunked removes Transfer-Encoding from Header and reports whether it is
// exactly one field saying chunked (in any case). Before HTTP/1.1 (HTTP/0.0
// counts as 1.1, as in net/http) it is ignored; any other value is an
// error, as net/http supports no other encoding.
func (r *Response) chunked() (bool, error) {
	te, ok := r.Header["Transfer-Encoding"]
	if !ok {
		return false, nil
	}
	delete(r.Header, "Transfer-Encoding")
	major, minor := r.ProtoMajor, r.ProtoMinor
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}
	if major < 1 || major == 1 && minor < 1 {
		return false, nil
	}
	if len(te) != 1 {
		return false, fmt.Errorf("upstream: too many transfer encodings: %q", te)
	}
	if !ascii.EqualFold(te[0], "chunked") {
		return false, fmt.Errorf("upstream: unsupported transfer encoding: %q", te[0])
	}
	return true, nil
}

// respContentLength validates the Content-Length fields: several must all
// be the same (once trimmed), and are then folded into one; the value must
// be decimal digits below 2^63. declared reports whether there was one.
func respContentLength(h http.Header) (n int64, declared bool, err error) {
	cl := h["Content-Length"]
	if len(cl) == 0 {
		return -1, false, nil
	}
	first := textproto.TrimString(cl[0])
	for _, v := range cl[1:] {
		if textproto.TrimString(v) != first {
			return 0, false, fmt.Errorf("upstream: message cannot contain multiple Content-Length headers; got %q", cl)
		}
	}
	if len(cl) > 1 {
		cl[0] = first
		h["Content-Length"] = cl[:1]
	}
	if first == "" {
		return 0, false, errors.New("upstream: invalid empty Content-Length")
	}
	u, err := strconv.ParseUint(first, 10, 63)
	if err != nil {
		return 0, false, fmt.Errorf("upstream: bad Content-Length %q", first)
	}
	return int64(u), true, nil
}

// respBodyAllowed reports whether a response with status may have a body:
// not 1xx, 204 or 304.
func respBodyAllowed(status int) bool {
	return status/100 != 1 && status != 204 && status != 304
}

// declareTrailer moves the Trailer field of a chunked response into
// Trailer's keys (canonicalized, nil values); a declared Transfer-Encoding,
// Trailer or Content-Length is an error. Without chunked framing the
// field stays in Header and Trailer stays nil, as net/http.
func (r *Response) declareTrailer(chunked bool) error {
	vv, ok := r.Header["Trailer"]
	if !ok || !chunked {
		return nil
	}
	delete(r.Header, "Trailer")
	if r.declared == nil {
		r.declared = make(http.Header)
	}
	for _, v := range vv {
		for elem := range respElements(v) {
			key := http.CanonicalHeaderKey(elem)
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return fmt.Errorf("upstream: bad trailer key %q", key)
			}
			r.declared[key] = nil
		}
	}
	if len(r.declared) > 0 {
		r.Trailer = r.declared
	}
	return nil
}

// respElements yields the non-empty, trimmed elements of a comma-separated
// field value.
func respElements(v string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for v != "" {
			elem := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				elem, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if elem = textproto.TrimString(elem); elem != "" && !yield(elem) {
				return
			}
		}
	}
}

// Body returns a reader of exactly the body of the response whose head
// was read from br: http.NoBody when it has none (HEAD, 1xx, 204, 304, a
// zero Content-Length); else the reader lives in r (no allocation) and
// reads Content-Length bytes, or the chunked body decoded (then the trailer
// section into Trailer), or everything until EOF (Close is then true).
//
// Its Read returns io.EOF exactly at the body's end (with the last bytes
// when it knows), io.ErrUnexpectedEOF when the body is cut short, an error
// for bad chunked framing or trailer; an error is final. It does not wait
// for more input once it has bytes to return. For a 101 the body is none:
// whatever follows on br belongs to the switched protocol.
func (r *Response) Body(br *bufio.Reader) (io.Reader, error) {
	switch {
	case r.br == nil:
		return nil, errRespNoHead
	case br != r.br:
		return nil, errRespOtherReader
	case r.body.mode == respNone:
		return http.NoBody, nil
	}
	r.body.resp, r.body.br = r, br
	return &r.body, nil
}

// Complete reports whether the response has been read to its end: the
// body (if any) up to io.EOF, trailer included. Only then may the
// connection carry another exchange, and only when Close is false and the
// status is not 101 (after a 1xx other than 101, the next head follows).
func (r *Response) Complete() bool {
	return r.br != nil && r.body.done
}

// respBodyMode is how a body is framed.
type respBodyMode uint8

const (
	respNone     respBodyMode = iota // no body
	respLength                       // Content-Length bytes
	respChunked                      // chunked transfer coding
	respUntilEOF                     // until the peer closes
)

// respBody reads a response body from the head's reader; it is a field of
// Response so that reading a body allocates nothing.
type respBody struct {
	resp *Response
	br   *bufio.Reader
	mode respBodyMode
	done bool  // the end was reached
	err  error // the first error, returned from then on

	left      int64  // respLength: bytes still to read
	chunkLeft uint64 // respChunked: bytes of the current chunk still to read
	needCRLF  bool   // respChunked: the CRLF after a chunk's data is next
	excess    int64  // respChunked: framing bytes beyond net/http's allowance
}

// Read implements io.Reader; see Response.Body.
func (b *respBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	var n int
	var err error
	switch b.mode {
	case respLength:
		n, err = b.readLength(p)
	case respChunked:
		n, err = b.readChunked(p)
	case respUntilEOF:
		if n, err = b.br.Read(p); err == io.EOF {
			b.done = true
		}
	default:
		return 0, io.EOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// readLength reads from a body of b.left more bytes.
func (b *respBody) readLength(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	if b.left -= int64(n); b.left == 0 {
		b.done = true
		return n, io.EOF
	}
	return n, respNoEOF(err)
}

// readChunked decodes chunked data into p. It handles the framing that is
// already buffered even when p is full, so that the end of the body is
// seen with its last bytes, but never waits for input once it has bytes.
func (b *respBody) readChunked(p []byte) (n int, err error) {
	for {
		if b.chunkLeft == 0 {
			if b.needCRLF {
				if n > 0 && b.br.Buffered() < 2 {
					return n, nil
				}
				if err := b.readChunkEnd(); err != nil {
					return n, err
				}
				b.needCRLF = false
			}
			if n > 0 && !respLineBuffered(b.br) {
				return n, nil
			}
			size, err := b.readChunkSize()
			if err != nil {
				return n, err
			}
			if size == 0 {
				if err := b.resp.readTrailer(b.br); err != nil {
					return n, err
				}
				b.done = true
				return n, io.EOF
			}
			b.chunkLeft = size
		}
		if len(p) == 0 {
			return n, nil
		}
		q := p
		if uint64(len(q)) > b.chunkLeft {
			q = q[:b.chunkLeft]
		}
		m, err := b.br.Read(q)
		n, p, b.chunkLeft = n+m, p[m:], b.chunkLeft-uint64(m)
		if err != nil {
			return n, respNoEOF(err)
		}
		b.needCRLF = b.chunkLeft == 0
		if b.chunkLeft > 0 && (len(p) == 0 || b.br.Buffered() == 0) {
			return n, nil
		}
	}
}

// respLineBuffered reports whether a whole line is buffered in br.
func respLineBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// readChunkEnd consumes the CRLF that must follow a chunk's data.
func (b *respBody) readChunkEnd() error {
	crlf, err := b.br.Peek(2)
	if len(crlf) < 2 {
		return respNoEOF(err)
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return errRespChunkCRLF
	}
	b.br.Discard(2)
	return nil
}

// respMaxChunkLine bounds a chunk size line, extensions included and CRLF
// excluded (it must also fit br's buffer), as net/http.
const respMaxChunkLine = 4096

// readChunkSize reads a chunk size line: hex digits (at most 16), then
// optional spaces or tabs and extensions after ';' (ignored), ending in
// CRLF with no other CR. Like net/http it fails a body whose framing
// (size lines, extensions, CRLFs) outgrows 16 bytes per chunk plus twice
// the data by more than 16 KiB, except at the last chunk.
func (b *respBody) readChunkSize() (uint64, error) {
	line, err := b.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return 0, errRespChunkLong
	case err != nil:
		return 0, respNoEOF(err)
	}
	switch cr := bytes.IndexByte(line, '\r'); {
	case cr < 0:
		return 0, errRespChunkLF
	case cr != len(line)-2:
		return 0, errRespChunkCR
	}
	line = line[:len(line)-2]
	if len(line) >= respMaxChunkLine {
		return 0, errRespChunkLong
	}
	b.excess += int64(len(line)) + 2
	line = respTrimRightOWS(line)
	line, _, _ = bytes.Cut(line, []byte(";"))
	size, err := respParseHex(line)
	if err != nil {
		return 0, err
	}
	b.excess = max(b.excess-(16+2*int64(size)), 0) // int64 wraps as net/http's does
	if size != 0 && b.excess > 16<<10 {
		return 0, errRespChunkOverhead
	}
	return size, nil
}

// respParseHex parses 1 to 16 hex digits.
func respParseHex(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errRespChunkEmpty
	}
	var n uint64
	for i, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, errRespChunkHex
		}
		if i == 16 {
			return 0, errRespChunkBig
		}
		n = n<<4 | uint64(d)
	}
	return n, nil
}

// readTrailer reads the trailer section after the last chunk, as net/http:
// a bare CRLF ends the body; otherwise the section must end (with CRLF
// CRLF) within br's buffer, is parsed as header fields and merged into
// Trailer, its values replacing the declared keys' (Trailer is set if it
// was nil).
func (r *Response) readTrailer(br *bufio.Reader) error {
	buf, err := br.Peek(2)
	switch {
	case len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n':
		br.Discard(2)
		return nil
	case len(buf) < 2:
		return errRespTrailerEOF
	case err != nil:
		return err
	}
	if !respSeeDoubleCRLF(br) {
		return errRespLongTrailer
	}
	if r.trailerFields == nil {
		r.trailerFields = make(http.Header)
	}
	r.limit = math.MaxInt64 // bounded by the buffer, as checked above
	if err := r.readFields(br, r.trailerFields, nil); err != nil {
		if err == io.ErrUnexpectedEOF {
			return errRespTrailerEOF
		}
		return err
	}
	if r.Trailer == nil {
		if r.declared == nil {
			r.declared = make(http.Header)
		}
		r.Trailer = r.declared
	}
	maps.Copy(r.Trailer, r.trailerFields)
	return nil
}

// respSeeDoubleCRLF reports whether "\r\n\r\n" comes within br's buffer,
// reading (and waiting) only as far as it needs to.
func respSeeDoubleCRLF(br *bufio.Reader) bool {
	from := 0
	for {
		n := br.Buffered()
		buf, _ := br.Peek(n)
		if bytes.Contains(buf[from:], []byte("\r\n\r\n")) {
			return true
		}
		if n >= br.Size() {
			return false
		}
		from = max(n-3, 0)
		if _, err := br.Peek(n + 1); err != nil {
			buf, _ := br.Peek(br.Buffered())
			return bytes.Contains(buf[from:], []byte("\r\n\r\n"))
		}
	}
}
