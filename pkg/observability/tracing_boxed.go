package observability

import (
	"sync/atomic"

	"go.opencensus.io/trace"
)

// An OpenCensus attribute holds its value in an interface, so building one
// from a string or an int64 above 255 allocates. The attributes below have
// values that repeat from request to request; they are built once and
// copied (a copy shares the boxed value), which saves four allocations
// per traced request (BenchmarkChainTracing: 114 to 110).

// stringAttr returns the attribute key=value, from cache (built once per
// process for the values listed in it) when it has it.
func stringAttr(cache map[string]trace.Attribute, key, value string) trace.Attribute {
	if a, ok := cache[value]; ok {
		return a
	}
	return trace.StringAttribute(key, value)
}

func boxStrings(key string, values ...string) map[string]trace.Attribute {
	m := make(map[string]trace.Attribute, len(values))
	for _, v := range values {
		m[v] = trace.StringAttribute(key, v)
	}
	return m
}

var (
	boxedMethods   = boxStrings(attrMethod, append(standardMethods[:], "_OTHER")...)
	boxedSchemes   = boxStrings(attrURLScheme, "http", "https")
	boxedVersions  = boxStrings(attrProtocolVersion, "1.0", "1.1", "2.0", "2")
	boxedRouteTags = boxStrings(attrRouteTag, "kn:disabled", "kn:default", "kn:undefined")
	boxedLoopback  = boxStrings(attrServerAddress, "127.0.0.1", "localhost", "::1")

	// clientNames are the client span names of the standard methods.
	clientNames = func() map[string]string {
		m := make(map[string]string, len(standardMethods))
		for _, s := range standardMethods {
			m[s] = "HTTP " + s
		}
		return m
	}()
)

// statusCodeAttrs holds http.response.status_code for 100 to 599.
var statusCodeAttrs = func() *[500]trace.Attribute {
	var a [500]trace.Attribute
	for i := range a {
		a[i] = trace.Int64Attribute(attrStatusCode, int64(i+100))
	}
	return &a
}()

func statusCodeAttr(code int) trace.Attribute {
	if code >= 100 && code < 600 {
		return statusCodeAttrs[code-100]
	}
	return trace.Int64Attribute(attrStatusCode, int64(code))
}

// portAttr is a one-entry cache of a server.port attribute: the client
// span's port is the user container's, the same for every request.
type portAttr struct {
	last atomic.Pointer[portEntry]
}

type portEntry struct {
	port int
	attr trace.Attribute
}

func (c *portAttr) get(port int) trace.Attribute {
	if e := c.last.Load(); e != nil && e.port == port {
		return e.attr
	}
	e := &portEntry{port: port, attr: trace.Int64Attribute(attrServerPort, int64(port))}
	c.last.Store(e)
	return e.attr
}

var clientPort portAttr

// semconvClientName is the client span's name, "HTTP <method>".
func semconvClientName(m string) string {
	if n, ok := clientNames[m]; ok {
		return n
	}
	return "HTTP " + m
}
