package http

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	netheader "knative.dev/networking/pkg/http/header"

	"github.com/queue-proxy/queue-proxy/pkg/http/logtemplate"
)

// DefaultRequestLogTemplate is the newest Knative generation's default
// request-log template (CONTRACT.md §3.11). The request log renders it
// by hand (the output is the same, byte for byte, about 20 times faster);
// any other template goes through logtemplate.
const DefaultRequestLogTemplate = `{"httpRequest": {"requestMethod": "{{.Request.Method}}", "requestUrl": "{{js .Request.RequestURI}}", "requestSize": "{{.Request.ContentLength}}", "status": {{.Response.Code}}, "responseSize": "{{.Response.Size}}", "userAgent": "{{js .Request.UserAgent}}", "remoteIp": "{{js .Request.RemoteAddr}}", "serverIp": "{{.Revision.PodIP}}", "referer": "{{js .Request.Referer}}", "latency": "{{.Response.Latency}}s", "protocol": "{{.Request.Proto}}"}, "traceId": "{{.TraceID}}"}`

// RequestLogRevision is the revision and pod a request log line describes:
// the template's .Revision.
type RequestLogRevision struct {
	Name          string
	Namespace     string
	Service       string
	Configuration string
	PodName       string
	PodIP         string
}

// RequestLogResponse is the template's .Response.
type RequestLogResponse struct {
	// Code is the status written, 200 if the handler wrote none, 500 if it
	// panicked.
	Code int
	// Size is the number of body bytes written (0 after a panic).
	Size int
	// Latency is the time the request spent in the handler, in seconds.
	Latency float64
}

// RequestLogTemplateInput is what the request log template is executed on.
type RequestLogTemplateInput struct {
	// Request is the request as the request log handler received it.
	Request  *http.Request
	Response *RequestLogResponse
	Revision *RequestLogRevision
	// TraceID identifies the request's trace (ExtractTraceID), or is "".
	TraceID string
}

// RequestLogTemplateInputGetter builds the template input of one request.
type RequestLogTemplateInputGetter func(req *http.Request, resp *RequestLogResponse) *RequestLogTemplateInput

// RequestLogTemplateInputGetterFromRevision returns a getter that describes
// every request as served by rev, with the TraceID its headers carry.
func RequestLogTemplateInputGetterFromRevision(rev *RequestLogRevision) RequestLogTemplateInputGetter {
	return func(req *http.Request, resp *RequestLogResponse) *RequestLogTemplateInput {
		return &RequestLogTemplateInput{Request: req, Response: resp, Revision: rev, TraceID: ExtractTraceID(req.Header)}
	}
}

// ExtractTraceID returns the trace id an incoming request carries: the
// second `-` field of `traceparent` if there is one, else `X-B3-TraceId`,
// else "". Unlike Knative, a value that is not 1 to 32 hex digits is skipped
// (the next source is tried): it comes from the client and lands unescaped
// in the default template's JSON.
func ExtractTraceID(h http.Header) string {
	if tp := h.Get("Traceparent"); tp != "" {
		if _, rest, ok := strings.Cut(tp, "-"); ok {
			if id, _, _ := strings.Cut(rest, "-"); isTraceID(id) {
				return id
			}
		}
	}
	if id := h.Get("X-B3-Traceid"); isTraceID(id) {
		return id
	}
	return ""
}

func isTraceID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// RequestLogHandler writes one line per request, rendered from a Go
// text/template template (CONTRACT.md §3.11), executed by logtemplate, after
// the inner handler returns.
//
//   - The template's input is a RequestLogTemplateInput; a "\n" is appended
//     to the template if it does not end with one.
//   - Each line is rendered into a pooled buffer and written with a single
//     Write, under a mutex, so lines never interleave.
//   - An empty template writes nothing (the handler stays in the chain).
//   - Templates may call only the methods logtemplate allows (UserAgent,
//     Referer, Header.Get, URL.String, ...); one that calls another method
//     on a typical request is refused by NewRequestLogHandler/SetTemplate.
//   - Probe requests (netheader.IsProbe) are logged only if
//     enableProbeRequestLog.
//   - If the template fails at run time, the partial output is discarded and
//     the line `Invalid request log template: method: <m>, response code:
//     <code>, latency: <s>, url: <url>` is written instead.
//   - If the inner handler panics, a line with code 500 and size 0 is
//     written and the panic continues.
//
// The template function `js` is replaced by a variant whose output is valid
// in both JavaScript and JSON strings (`'` becomes \u0027, not \', invalid
// UTF-8 becomes \ufffd, non-printable runes beyond U+FFFF become surrogate
// pairs); for everything else it writes what text/template's js writes. So
// the default template always renders one line of valid JSON.
type RequestLogHandler struct {
	handler               http.Handler
	inputGetter           RequestLogTemplateInputGetter
	enableProbeRequestLog bool
	template              atomic.Pointer[requestLogTemplate] // nil: log nothing

	mu     sync.Mutex // serialises writes to writer
	writer io.Writer

	buffers   sync.Pool // of *bytes.Buffer
	recorders sync.Pool // of *ResponseRecorder
}

// requestLogTemplate is a parsed template; isDefault marks
// DefaultRequestLogTemplate, which is rendered by appendDefaultLine.
type requestLogTemplate struct {
	*logtemplate.Template
	isDefault bool
}

// maxPooledBuffer bounds the buffers kept for reuse: a line rendered from a
// huge request is not worth keeping the memory for.
const maxPooledBuffer = 64 << 10

// NewRequestLogHandler returns a handler that serves h and logs each request
// to w with templateStr. It fails if the template does not parse.
func NewRequestLogHandler(h http.Handler, w io.Writer, templateStr string,
	inputGetter RequestLogTemplateInputGetter, enableProbeRequestLog bool) (*RequestLogHandler, error) {
	rh := &RequestLogHandler{
		handler:               h,
		writer:                w,
		inputGetter:           inputGetter,
		enableProbeRequestLog: enableProbeRequestLog,
	}
	rh.buffers.New = func() any { return new(bytes.Buffer) }
	rh.recorders.New = func() any { return NewResponseRecorder(nil, http.StatusOK) }
	if err := rh.SetTemplate(templateStr); err != nil {
		return nil, err
	}
	return rh, nil
}

// SetTemplate replaces the template; "" turns logging off. On a parse error
// the previous template stays.
func (h *RequestLogHandler) SetTemplate(templateStr string) error {
	if templateStr == "" {
		h.template.Store(nil)
		return nil
	}
	if !strings.HasSuffix(templateStr, "\n") {
		templateStr += "\n"
	}
	t, err := logtemplate.Parse("requestLog", templateStr, map[string]any{"js": jsonSafeJSEscaper})
	if err != nil {
		return err
	}
	// A template that calls a method request log templates cannot call
	// (logtemplate's whitelist) is refused now, naming the method, rather
	// than writing the fallback line for every request.
	if err := t.Execute(io.Discard, sampleInput()); errors.Is(err, logtemplate.ErrUnsupportedMethod) {
		return err
	}
	h.template.Store(&requestLogTemplate{Template: t, isDefault: templateStr == DefaultRequestLogTemplate+"\n"})
	return nil
}

// sampleInput is a typical request's template input, for SetTemplate's
// trial run.
func sampleInput() *RequestLogTemplateInput {
	return &RequestLogTemplateInput{
		Request: &http.Request{
			Method: http.MethodGet, URL: &url.URL{Path: "/"}, RequestURI: "/", Host: "example.com",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:1",
			Header: http.Header{"User-Agent": {"sample"}},
		},
		Response: &RequestLogResponse{Code: http.StatusOK},
		Revision: &RequestLogRevision{},
	}
}

// ServeHTTP implements http.Handler.
func (h *RequestLogHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.template.Load()
	if t == nil || (!h.enableProbeRequestLog && netheader.IsProbe(r)) {
		h.handler.ServeHTTP(w, r)
		return
	}

	rr := h.recorders.Get().(*ResponseRecorder)
	rr.Reset(w, http.StatusOK)
	start := time.Now()
	returned := false
	defer func() {
		resp := RequestLogResponse{Code: rr.ResponseCode, Size: int(rr.ResponseSize), Latency: time.Since(start).Seconds()}
		if !returned {
			resp.Code, resp.Size = http.StatusInternalServerError, 0
		} else {
			rr.Reset(nil, 0) // after a panic the recorder is dropped, not reused
			h.recorders.Put(rr)
		}
		h.write(t, r, &resp)
	}()
	h.handler.ServeHTTP(rr, r)
	returned = true
}

func (h *RequestLogHandler) write(t *requestLogTemplate, r *http.Request, resp *RequestLogResponse) {
	buf := h.buffers.Get().(*bytes.Buffer)
	buf.Reset()
	in := h.inputGetter(r, resp)
	if t.isDefault && in != nil && in.Request != nil && in.Response != nil && in.Revision != nil {
		buf.Write(appendDefaultLine(buf.AvailableBuffer(), in))
	} else if err := t.Execute(buf, in); err != nil {
		buf.Reset()
		fmt.Fprintf(buf, "Invalid request log template: method: %v, response code: %v, latency: %v, url: %v\n",
			r.Method, resp.Code, resp.Latency, r.URL)
	}
	h.mu.Lock()
	h.writer.Write(buf.Bytes()) //nolint:errcheck // nowhere to report a failed log write
	h.mu.Unlock()
	if buf.Cap() <= maxPooledBuffer {
		h.buffers.Put(buf)
	}
}

// appendDefaultLine appends what DefaultRequestLogTemplate renders for in
// (whose Request, Response and Revision are not nil): the same bytes as
// text/template with our js, which prints ints in decimal and floats as
// fmt's %v does (strconv's shortest 'g').
func appendDefaultLine(b []byte, in *RequestLogTemplateInput) []byte {
	r, resp := in.Request, in.Response
	b = append(b, `{"httpRequest": {"requestMethod": "`...)
	b = append(b, r.Method...)
	b = append(b, `", "requestUrl": "`...)
	b = appendJS(b, r.RequestURI)
	b = append(b, `", "requestSize": "`...)
	b = strconv.AppendInt(b, r.ContentLength, 10)
	b = append(b, `", "status": `...)
	b = strconv.AppendInt(b, int64(resp.Code), 10)
	b = append(b, `, "responseSize": "`...)
	b = strconv.AppendInt(b, int64(resp.Size), 10)
	b = append(b, `", "userAgent": "`...)
	b = appendJS(b, r.UserAgent())
	b = append(b, `", "remoteIp": "`...)
	b = appendJS(b, r.RemoteAddr)
	b = append(b, `", "serverIp": "`...)
	b = append(b, in.Revision.PodIP...)
	b = append(b, `", "referer": "`...)
	b = appendJS(b, r.Referer())
	b = append(b, `", "latency": "`...)
	b = strconv.AppendFloat(b, resp.Latency, 'g', -1, 64)
	b = append(b, `s", "protocol": "`...)
	b = append(b, r.Proto...)
	b = append(b, `"}, "traceId": "`...)
	b = append(b, in.TraceID...)
	return append(b, "\"}\n"...)
}

// jsonSafeJSEscaper is the request log template's `js`: text/template's
// argument handling (one string as is, anything else through fmt.Sprint)
// and jsonSafeJS.
func jsonSafeJSEscaper(args ...any) string {
	if len(args) == 1 {
		if s, ok := args[0].(string); ok {
			return jsonSafeJS(s)
		}
	}
	return jsonSafeJS(fmt.Sprint(args...))
}

// jsonSafeJS escapes s for a JavaScript string literal the way
// text/template's JSEscapeString does (\\, \", \u003C, \u003E, \u0026,
// \u003D, \u00XX for control characters, \uXXXX for other non-printable
// runes), except where that would not be valid JSON: `'` is \u0027, invalid
// UTF-8 is \ufffd and runes beyond U+FFFF are escaped as surrogate pairs.
// It returns s itself when nothing needs escaping.
func jsonSafeJS(s string) string {
	i := 0
	for i < len(s) && !jsSpecial(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	return string(appendJS(make([]byte, 0, len(s)+16), s))
}

// appendJS appends jsonSafeJS(s) to b.
func appendJS(b []byte, s string) []byte {
	last := 0 // s[last:i] is pending, to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if !jsSpecial(c) {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[last:i]...)
			switch c {
			case '\\':
				b = append(b, `\\`...)
			case '"':
				b = append(b, `\"`...)
			default: // ' < > & = and control characters
				b = appendUnicodeEscape(b, rune(c))
			}
			i++
			last = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsPrint(r) && !(r == utf8.RuneError && size == 1) {
			i += size // stays pending
			continue
		}
		b = append(b, s[last:i]...)
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r > 0xffff:
			r -= 0x10000
			b = appendUnicodeEscape(b, 0xd800+(r>>10))
			b = appendUnicodeEscape(b, 0xdc00+(r&0x3ff))
		default:
			b = appendUnicodeEscape(b, r)
		}
		i += size
		last = i
	}
	return append(b, s[last:]...)
}

func jsSpecial(c byte) bool {
	switch c {
	case '\\', '\'', '"', '<', '>', '&', '=':
		return true
	}
	return c < ' ' || c >= utf8.RuneSelf
}

// appendUnicodeEscape appends \uXXXX (upper-case hex, as text/template
// writes it) for r <= 0xffff.
func appendUnicodeEscape(b []byte, r rune) []byte {
	const hex = "0123456789ABCDEF"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
