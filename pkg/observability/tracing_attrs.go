package observability

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"go.opencensus.io/trace"
)

// The attributes of the HTTP spans, per convention. The OpenCensus ochttp
// names are Knative 1.15's; the semantic-convention names are otelhttp
// v0.72.0's (semconv v1.43.0).
const (
	attrOCPath       = "http.path"
	attrOCURL        = "http.url"
	attrOCHost       = "http.host"
	attrOCMethod     = "http.method"
	attrOCUserAgent  = "http.user_agent"
	attrOCStatusCode = "http.status_code"

	attrServerAddress   = "server.address"
	attrServerPort      = "server.port"
	attrMethod          = "http.request.method"
	attrMethodOriginal  = "http.request.method_original"
	attrURLScheme       = "url.scheme"
	attrURLPath         = "url.path"
	attrURLFull         = "url.full"
	attrPeerAddress     = "network.peer.address"
	attrPeerPort        = "network.peer.port"
	attrUserAgent       = "user_agent.original"
	attrClientAddress   = "client.address"
	attrProtocolName    = "network.protocol.name"
	attrProtocolVersion = "network.protocol.version"
	attrRequestSize     = "http.request.body.size"
	attrResponseSize    = "http.response.body.size"
	attrStatusCode      = "http.response.status_code"
	attrErrorType       = "error.type"
	attrRouteTag        = "kn.route.tag"
)

// ochttpUntraced reports the paths ochttp never traces (its health
// endpoints).
func ochttpUntraced(path string) bool { return path == "/healthz" || path == "/_ah/health" }

// ochttpAttrs appends ochttp's request attributes of r: http.path, http.url
// (r.URL as a string: the request URI on the server, the absolute URL on
// the client), http.host, http.method and, when sent, http.user_agent.
func ochttpAttrs(attrs []trace.Attribute, r *http.Request, host string) []trace.Attribute {
	attrs = append(attrs,
		trace.StringAttribute(attrOCPath, r.URL.Path),
		trace.StringAttribute(attrOCURL, r.URL.String()),
		trace.StringAttribute(attrOCHost, host),
		trace.StringAttribute(attrOCMethod, r.Method),
	)
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, trace.StringAttribute(attrOCUserAgent, ua))
	}
	return attrs
}

// ochttpStatus is ochttp's span status for an HTTP status: an OpenCensus
// (gRPC) code and its name as the message; "OK" for the 2xx and 3xx codes
// not in ochttpCodes, UNKNOWN for the others.
func ochttpStatus(code int) trace.Status {
	c, ok := ochttpCodes[code]
	if !ok && (code < 200 || code >= 400) {
		c = trace.StatusCodeUnknown
	}
	return trace.Status{Code: c, Message: canonicalCode(c)}
}

// ochttpCodes are the HTTP statuses ochttp maps to a code of their own.
var ochttpCodes = map[int]int32{
	http.StatusOK:                  trace.StatusCodeOK,
	http.StatusBadRequest:          trace.StatusCodeInvalidArgument,
	http.StatusUnauthorized:        trace.StatusCodeUnauthenticated,
	http.StatusForbidden:           trace.StatusCodePermissionDenied,
	http.StatusNotFound:            trace.StatusCodeNotFound,
	http.StatusConflict:            trace.StatusCodeAlreadyExists,
	http.StatusUnprocessableEntity: trace.StatusCodeInvalidArgument,
	http.StatusTooManyRequests:     trace.StatusCodeResourceExhausted,
	499:                            trace.StatusCodeCancelled, // client closed request
	http.StatusNotImplemented:      trace.StatusCodeUnimplemented,
	http.StatusServiceUnavailable:  trace.StatusCodeUnavailable,
	http.StatusGatewayTimeout:      trace.StatusCodeDeadlineExceeded,
}

// semconvMethod returns http.request.method's value for m (a standard
// method in upper case, else "_OTHER"), and the original method when it
// differs from that.
func semconvMethod(m string) (method, original string) {
	if m == "" {
		return "_OTHER", ""
	}
	for _, s := range standardMethods {
		if m == s {
			return s, ""
		}
	}
	return standardMethod(m), m
}

// semconvServerName is the server span's name: the method in upper case
// when standard, else "HTTP" (there is no route).
func semconvServerName(m string) string {
	if s := standardMethod(m); s != "_OTHER" {
		return s
	}
	return "HTTP"
}

// semconvServerAttrs appends the server span's request attributes.
func semconvServerAttrs(attrs []trace.Attribute, r *http.Request) []trace.Attribute {
	host, port := splitHostPort(r.Host)
	method, original := semconvMethod(r.Method)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs,
		trace.StringAttribute(attrServerAddress, host),
		stringAttr(boxedMethods, attrMethod, method),
		stringAttr(boxedSchemes, attrURLScheme, scheme),
	)
	if p := nonDefaultPort(r.TLS != nil, port); p > 0 {
		attrs = append(attrs, trace.Int64Attribute(attrServerPort, int64(p)))
	}
	if original != "" {
		attrs = append(attrs, trace.StringAttribute(attrMethodOriginal, original))
	}
	peer, peerPort := splitHostPort(r.RemoteAddr)
	if peer != "" {
		attrs = append(attrs, trace.StringAttribute(attrPeerAddress, peer))
		if peerPort > 0 {
			attrs = append(attrs, trace.Int64Attribute(attrPeerPort, int64(peerPort)))
		}
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, trace.StringAttribute(attrUserAgent, ua))
	}
	client := r.Header.Get("X-Forwarded-For")
	if i := strings.IndexByte(client, ','); i >= 0 {
		client = client[:i]
	}
	if client == "" {
		client = peer
	}
	if client != "" {
		attrs = append(attrs, trace.StringAttribute(attrClientAddress, client))
	}
	if r.URL != nil && r.URL.Path != "" {
		attrs = append(attrs, trace.StringAttribute(attrURLPath, r.URL.Path))
	}
	return appendProtocol(attrs, r.Proto)
}

// semconvServerResponseAttrs appends the server span's response attributes:
// the body sizes when not zero, and the status code.
func semconvServerResponseAttrs(attrs []trace.Attribute, read, written int64, code int) []trace.Attribute {
	if read > 0 {
		attrs = append(attrs, trace.Int64Attribute(attrRequestSize, read))
	}
	if written > 0 {
		attrs = append(attrs, trace.Int64Attribute(attrResponseSize, written))
	}
	if code > 0 {
		attrs = append(attrs, statusCodeAttr(code))
	}
	return attrs
}

// semconvServerStatus: Error for 5xx and invalid codes, else unset.
func semconvServerStatus(code int) trace.Status {
	if code < 100 || code >= 600 {
		return trace.Status{Code: trace.StatusCodeUnknown, Message: "Invalid HTTP status code " + strconv.Itoa(code)}
	}
	if code >= 500 {
		return trace.Status{Code: trace.StatusCodeUnknown}
	}
	return trace.Status{}
}

// semconvClientStatus: Error for 4xx, 5xx and invalid codes, else unset.
func semconvClientStatus(code int) trace.Status {
	if code < 100 || code >= 600 {
		return trace.Status{Code: trace.StatusCodeUnknown, Message: "Invalid HTTP status code " + strconv.Itoa(code)}
	}
	if code >= 400 {
		return trace.Status{Code: trace.StatusCodeUnknown}
	}
	return trace.Status{}
}

// semconvClientAttrs appends the client span's request attributes.
func semconvClientAttrs(attrs []trace.Attribute, r *http.Request) []trace.Attribute {
	method, original := semconvMethod(r.Method)
	attrs = append(attrs, stringAttr(boxedMethods, attrMethod, method))
	if original != "" {
		attrs = append(attrs, trace.StringAttribute(attrMethodOriginal, original))
	}
	var host string
	port := -1
	for _, hp := range [...]string{r.URL.Host, r.Header.Get("Host")} {
		if host, port = splitHostPort(hp); host != "" || port > 0 {
			break
		}
	}
	u := *r.URL
	u.User = nil
	attrs = append(attrs,
		trace.StringAttribute(attrURLFull, u.String()),
		stringAttr(boxedLoopback, attrServerAddress, host),
	)
	if p := nonDefaultPort(r.URL.Scheme == "https", port); p > 0 {
		attrs = append(attrs, clientPort.get(p))
	}
	return appendProtocol(attrs, r.Proto)
}

// semconvClientResponseAttrs appends the client span's response
// attributes: the status code, error.type for an error status, and the
// protocol the response came in.
func semconvClientResponseAttrs(attrs []trace.Attribute, resp *http.Response) []trace.Attribute {
	if resp.StatusCode > 0 {
		attrs = append(attrs, statusCodeAttr(resp.StatusCode))
	}
	if resp.StatusCode >= 400 || resp.StatusCode < 100 {
		attrs = append(attrs, trace.StringAttribute(attrErrorType, strconv.Itoa(resp.StatusCode)))
	}
	return appendProtocol(attrs, resp.Proto)
}

// appendProtocol appends network.protocol.name (unless it is "http") and
// network.protocol.version from a protocol string such as "HTTP/1.1".
func appendProtocol(attrs []trace.Attribute, proto string) []trace.Attribute {
	name, version, _ := strings.Cut(proto, "/")
	switch name {
	case "HTTP":
		name = "http"
	case "QUIC":
		name = "quic"
	case "SPDY":
		name = "spdy"
	default:
		name = strings.ToLower(name)
	}
	if name != "" && name != "http" {
		attrs = append(attrs, trace.StringAttribute(attrProtocolName, name))
	}
	if version != "" {
		attrs = append(attrs, stringAttr(boxedVersions, attrProtocolVersion, version))
	}
	return attrs
}

// spanErrorType is a transport error's error.type on a span, as semconv
// v1.43.0's ErrorType: the ErrorType() method of the first error in the
// chain that has one, else the concrete type after unwrapping fmt.Errorf
// wrappers, as "package/path.Name" for a named type and Go's spelling
// otherwise (e.g. "*net.OpError").
func spanErrorType(err error) string {
	var et interface{ ErrorType() string }
	if errors.As(err, &et) {
		if s := et.ErrorType(); s != "" {
			return s
		}
	}
	for reflect.TypeOf(err) == fmtWrapErrorType {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	t := reflect.TypeOf(err)
	if t == nil {
		return "_OTHER"
	}
	if t.PkgPath() != "" && t.Name() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

var fmtWrapErrorType = reflect.TypeOf(fmt.Errorf("wrapped: %w", errors.New("err")))

// panicType is the exception.type of a recovered panic value, as the SDK
// spells it: "package/path.Name" for a named type, Go's spelling otherwise.
func panicType(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return "<nil>"
	}
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}
