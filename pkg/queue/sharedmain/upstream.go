package sharedmain

import (
	"log"
	"net/http"
	"net/http/httputil"
	"reflect"
	"time"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/http/upstream"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
)

// QP_UPSTREAM_PATH values.
const (
	upstreamAuto    = "auto"
	upstreamGeneric = "generic"
)

// upstreamPaths chooses the innermost handler: the lean HTTP/1.1 path
// (pkg/http/upstream), which hands what it does not take to the default
// ReverseProxy, or the Options' handler alone.
//
// The lean path is used only when it would do exactly what the chain
// expects of the ReverseProxy and the transport it was given:
//   - QP_UPSTREAM_PATH is auto and full-duplex mode is off (the lean path
//     writes the request body before it reads the response);
//   - no client spans are made (tracing on: they wrap the transport);
//   - the Options left Transport and ProxyHandler as they were, and the
//     ReverseProxy's fields untouched: a transport or handler an Option
//     wrapped or replaced, or a tuned ReverseProxy, is used for every
//     request.
//
// The newest generation's client metrics, which wrap the transport, are
// recorded by the lean path itself.
type upstreamPaths struct {
	rp        *httputil.ReverseProxy // the default ProxyHandler
	rpFields  reverseProxyFields     // rp's fields before the Options
	transport http.RoundTripper      // the default Transport, wrapped
	lean      *upstream.Proxy        // nil: QP_UPSTREAM_PATH generic
}

// uncheckedIdle is how long after a complete response a connection is
// reused, for a request the retry rule lets be resent, without the
// liveness system call (upstream.Pool.GetReplayable): under load most
// connections are reused within it, and a user container that closes or
// writes on a connection within a millisecond of a response it did not
// mark Connection: close is broken in a way the check catches only when
// the reuse comes later anyway.
const uncheckedIdle = time.Millisecond

// newUpstreamPaths prepares the lean path to 127.0.0.1:USER_PORT beside rp
// and its transport, as the Options will find them.
func newUpstreamPaths(cfg *config, rp *httputil.ReverseProxy, transport http.RoundTripper, metrics metricsHooks) upstreamPaths {
	u := upstreamPaths{rp: rp, rpFields: fieldsOf(rp), transport: transport}
	if cfg.UpstreamPath == upstreamGeneric || cfg.EnableHTTPFullDuplex {
		return u
	}
	target := "127.0.0.1:" + cfg.UserPort
	pruned := make([]string, len(pkghttp.RevisionHeaders))
	for i, h := range pkghttp.RevisionHeaders {
		pruned[i] = http.CanonicalHeaderKey(h)
	}
	maxIdle := cfg.ContainerConcurrency
	if maxIdle <= 0 {
		maxIdle = upstream.DefaultMaxIdle
	}
	u.lean = &upstream.Proxy{
		Pool: &upstream.Pool{Addr: target, Dial: pkghttp.NewBackoffDialer().DialContext, MaxIdle: maxIdle,
			Unchecked: uncheckedIdle},
		Head:         upstream.RequestHead{Pruned: pruned, Target: target},
		Fallback:     rp,
		ErrorHandler: rp.ErrorHandler,
		Buffers:      rp.BufferPool,
	}
	if metrics.clientMetrics != nil {
		u.lean.Observer = clientObserver{rec: metrics.clientMetrics, host: target}
	}
	return u
}

// handler returns the innermost handler for what the Options left in d,
// and whether it is the lean path.
func (u upstreamPaths) handler(d *Defaults, tracing tracingHooks) (http.Handler, bool) {
	if u.lean == nil || tracing.wrapTransport != nil || !sameValue(d.Transport, u.transport) ||
		!sameValue(d.ProxyHandler, u.rp) || !fieldsOf(u.rp).same(u.rpFields) {
		return d.ProxyHandler, false
	}
	return u.lean, true
}

// closeIdle closes the lean path's idle connections, at shutdown.
func (u upstreamPaths) closeIdle() {
	if u.lean != nil {
		u.lean.Pool.CloseIdle()
	}
}

// reverseProxyFields is what an Option may change on the ReverseProxy:
// functions by their code pointer, the rest as set. (A function replaced
// by another closure of the same function literal has the same code
// pointer and goes unnoticed; the Options API gives no way to compare
// closures, and every other change is seen.)
type reverseProxyFields struct {
	rewrite, director, modifyResponse, errorHandler uintptr
	flushInterval                                   time.Duration
	errorLog                                        *log.Logger
	transport, bufferPool                           any
}

// same reports whether f and g hold the same values; interface values of
// a type that cannot be compared count as different.
func (f reverseProxyFields) same(g reverseProxyFields) bool {
	return f.rewrite == g.rewrite && f.director == g.director && f.modifyResponse == g.modifyResponse &&
		f.errorHandler == g.errorHandler && f.flushInterval == g.flushInterval && f.errorLog == g.errorLog &&
		sameValue(f.transport, g.transport) && sameValue(f.bufferPool, g.bufferPool)
}

func fieldsOf(rp *httputil.ReverseProxy) reverseProxyFields {
	fn := func(f any) uintptr {
		if v := reflect.ValueOf(f); !v.IsNil() {
			return v.Pointer()
		}
		return 0
	}
	return reverseProxyFields{
		rewrite: fn(rp.Rewrite), director: fn(rp.Director),
		modifyResponse: fn(rp.ModifyResponse), errorHandler: fn(rp.ErrorHandler),
		transport: rp.Transport, flushInterval: rp.FlushInterval,
		errorLog: rp.ErrorLog, bufferPool: rp.BufferPool,
	}
}

// sameValue reports whether a and b are equal, never panicking: values of
// a type that cannot be compared (a func type, say) count as different.
func sameValue(a, b any) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && (ta == nil || ta.Comparable() && a == b)
}

// clientObserver records the lean path's exchanges in the client metrics,
// as the metrics transport records net/http's.
type clientObserver struct {
	rec  *pkgobs.ClientRecorder
	host string
}

func (o clientObserver) Start() int64 { return int64(o.rec.Now()) }

func (o clientObserver) Done(r *http.Request, start int64, resp *upstream.Response, reqBytes int64, err error) {
	x := pkgobs.ClientExchange{Method: r.Method, Host: o.host, Start: time.Duration(start), RequestBytes: reqBytes, Err: err}
	if resp != nil {
		x.StatusCode, x.ProtoMajor, x.ProtoMinor = resp.StatusCode, resp.ProtoMajor, resp.ProtoMinor
	} else {
		x.ProtoMajor, x.ProtoMinor = r.ProtoMajor, r.ProtoMinor
	}
	o.rec.Record(&x)
}
