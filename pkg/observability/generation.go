package observability

import "math"

// A Generation is everything that differs between the observability outputs
// of two Knative generations, as data: the instruments (names, units,
// descriptions, buckets, attributes and where in the request path they
// measure), the instrumentation scopes and how they are exposed. The
// recording engine (metrics.go) and the writers (prometheus.go for 1.15,
// prometheus_otel.go and pkg/otlp for the newest) read it; nothing else in
// the code asks which generation it is in.
type Generation struct {
	// Name is how the startup log and the README call it.
	Name string
	// Instruments are the request metrics, in exposition order.
	Instruments []Instrument
	// QueueDepth is the breaker's in-flight gauge (present only with a
	// breaker, CONTAINER_CONCURRENCY > 0).
	QueueDepth Instrument
	// UpperInclusive: a value equal to a bucket bound counts in that
	// bucket, as OpenTelemetry's explicit-bucket histograms count (le);
	// otherwise in the next one, as OpenCensus (1.15) counted.
	UpperInclusive bool
	// RouteTag names the route-tag values (CONTRACT.md §3.7).
	RouteTag RouteTagValues
	// Exposition selects the Prometheus writer: the 1.15 OpenCensus
	// exporter's, or the OpenTelemetry Prometheus exporter's (scope labels,
	// unit suffixes, target_info, the Go runtime families).
	Exposition Exposition
	// Spans are the generation's spans (CONTRACT.md §5.5).
	Spans Spans
}

// Spans says how a generation traces a request: the names of the spans,
// which conventions name and attribute the HTTP spans, and which trace
// headers are read and written.
type Spans struct {
	// HTTP is the convention of the server and client spans.
	HTTP SpanConvention
	// Proxy and Wait are the queue layer's spans: the whole queue layer,
	// and the wait for the concurrency breaker (only with a breaker).
	Proxy, Wait string
	// ClientUnderWait: the client span is a child of Wait (when there is
	// one), as in the newest generation; in 1.15 it is a child of Proxy.
	ClientUnderWait bool
	// Probe is the health-probe handler's span; empty: probes get none.
	Probe string
	// Propagation is the trace-context formats read and written.
	Propagation Propagation
	// QueueScope is the scope of the Proxy and Wait spans, HTTPScope that of
	// the server and client spans (exporters that report scopes).
	QueueScope, HTTPScope Scope
}

// SpanConvention is how the server and client spans are named, attributed
// and given a status.
type SpanConvention uint8

// Span conventions.
const (
	// SpansOCHTTP: OpenCensus ochttp, as Knative 1.15 configured it. Both
	// spans are named by the URL path and carry http.path, http.url,
	// http.host, http.method, http.user_agent and http.status_code; the
	// status is OpenCensus' code for the HTTP status. Requests for /healthz
	// and /_ah/health are not traced. The server span wraps the request
	// inside the drainer, probes included.
	SpansOCHTTP SpanConvention = iota
	// SpansSemConv: otelhttp v0.72.0, the OpenTelemetry HTTP semantic
	// conventions. The server span is named by the method, the client span
	// "HTTP <method>"; status Error for 5xx (server) or >= 400 (client).
	// The server span is outermost and skips probes (netheader.IsProbe).
	SpansSemConv
)

// Propagation is a set of trace-context formats.
type Propagation uint8

// Propagations.
const (
	// PropagateW3CB3 reads W3C traceparent, then B3, and writes both
	// (Knative 1.15's tracecontextb3 formats).
	PropagateW3CB3 Propagation = iota
	// PropagateW3C reads and writes W3C traceparent and tracestate only;
	// B3 headers are neither read nor written (they pass through), and
	// baggage passes through as received.
	PropagateW3C
)

// Exposition is a Prometheus exposition style.
type Exposition uint8

// Exposition styles.
const (
	ExpositionOpenCensus Exposition = iota
	ExpositionOTel
)

// RouteTagValues are the route-tag values of a generation for requests
// without a tag (disabled), routed by default, and with an unknown tag.
type RouteTagValues struct{ Disabled, Default, Undefined string }

// Point is where in the request path an instrument measures.
type Point uint8

// Points.
const (
	// PointServer is the outermost metrics layer: every request that is not
	// a probe, with the status the client got.
	PointServer Point = iota
	// PointApp is inside the concurrency breaker, around the call to the
	// user container: requests that are not probes and were admitted.
	PointApp
	// PointClient is the upstream transport: every round trip to the user
	// container, probes forwarded by kubelet included.
	PointClient
	numPoints
)

// Quantity is what an instrument records for each request.
type Quantity uint8

// Quantities.
const (
	Duration         Quantity = iota // seconds, times Instrument.Scale
	RequestBodySize                  // bytes read from the request body
	ResponseBodySize                 // bytes written to the response body
)

// AttrKey is an attribute (OpenCensus tag, Prometheus label) that a request
// contributes to an instrument's series.
type AttrKey uint8

// Attribute keys; the values are taken as the OpenTelemetry HTTP semantic
// conventions (otelhttp v0.72.0) define them.
const (
	AttrStatusCode    AttrKey = iota // the response status code; absent on a transport error
	AttrRouteTag                     // the route tag (RouteTagValues)
	AttrMethod                       // the request method; _OTHER when not a standard one
	AttrScheme                       // http or https
	AttrServerAddress                // server host: the Host header (server), the URL host (client)
	AttrServerPort                   // server port, absent when it is the scheme's default
	AttrProtoName                    // "http"
	AttrProtoVersion                 // "1.0", "1.1", "2"
	AttrErrorType                    // the Go type of a transport error (client)
	numAttrKeys
)

// Attr is one attribute of an instrument: its key and exposed name.
type Attr struct {
	Key  AttrKey
	Name string // e.g. "http.response.status_code"; Prometheus replaces dots
	Int  bool   // an integer in OTLP (status code, port)
}

// Instrument describes one metric: a histogram of its Quantity, except
// Generation.QueueDepth, a gauge.
type Instrument struct {
	Name        string // OpenTelemetry name, or the 1.15 view name
	Description string
	Unit        string // UCUM: "s", "ms", "By", "{request}"
	Point       Point
	Quantity    Quantity
	Scale       float64   // multiplies seconds (1000: milliseconds) or bytes; 0 means 1
	Buckets     []float64 // histogram bounds, in the instrument's unit
	Attrs       []Attr
	Scope       Scope
	// Families are the 1.15 exposition's metric families fed by this
	// instrument (the OpenTelemetry exposition derives its name instead).
	Families []Family
}

// Family is a 1.15 Prometheus family and its type.
type Family struct {
	Name, Help string
	Type       promType
}

// Scope is an instrumentation scope.
type Scope struct{ Name, Version, SchemaURL string }

// Scopes of the newest generation (CONTRACT.md §5.3, §5.5).
var (
	ScopeQueue    = Scope{Name: "knative.dev/serving/pkg/queue"}
	ScopeOTelHTTP = Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.72.0"}
)

// Bucket bounds.
var (
	// LatencyBucketsMs are the 1.15 latency bounds, in milliseconds.
	LatencyBucketsMs = []float64{
		5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500,
		600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
	}
	// DurationBucketsSeconds are the newest duration bounds (otelhttp's and
	// kn.serving.invocation.duration's).
	DurationBucketsSeconds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	// SizeBucketsBytes are the OpenTelemetry SDK's default bounds, which the
	// body-size histograms use (otelhttp gives them none).
	SizeBucketsBytes = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}
)

// Attribute sets.
var (
	attrs115Server = []Attr{{Key: AttrStatusCode, Name: "response_code"}, {Key: AttrRouteTag, Name: "route_tag"}}
	attrs115App    = []Attr{{Key: AttrStatusCode, Name: "response_code"}}

	attrsHTTPServer = []Attr{
		{Key: AttrMethod, Name: "http.request.method"},
		{Key: AttrStatusCode, Name: "http.response.status_code", Int: true},
		{Key: AttrRouteTag, Name: "kn.route.tag"},
		{Key: AttrProtoName, Name: "network.protocol.name"},
		{Key: AttrProtoVersion, Name: "network.protocol.version"},
		{Key: AttrServerAddress, Name: "server.address"},
		{Key: AttrServerPort, Name: "server.port", Int: true},
		{Key: AttrScheme, Name: "url.scheme"},
	}
	attrsHTTPClient = []Attr{
		{Key: AttrErrorType, Name: "error.type"},
		{Key: AttrMethod, Name: "http.request.method"},
		{Key: AttrStatusCode, Name: "http.response.status_code", Int: true},
		{Key: AttrProtoName, Name: "network.protocol.name"},
		{Key: AttrProtoVersion, Name: "network.protocol.version"},
		{Key: AttrServerAddress, Name: "server.address"},
		{Key: AttrServerPort, Name: "server.port", Int: true},
		{Key: AttrScheme, Name: "url.scheme"},
	}
	attrsInvocation = []Attr{{Key: AttrStatusCode, Name: "http.response.status_code", Int: true}}
)

// Help texts of the 1.15 families.
const (
	helpRequestCount      = "The number of requests queue-proxy received, probes excluded"
	helpRequestLatencies  = "The time in milliseconds from receiving a request to finishing its response, as queue-proxy saw it"
	helpAppRequestCount   = "The number of requests queue-proxy passed to the user container"
	helpAppRequestLatency = "The time in milliseconds the user container took to answer, measured inside the concurrency limit"
	helpQueueDepth        = "The number of requests admitted by the concurrency breaker (queued plus running) when scraped"
)

// Generation115 is Knative 1.15's (serving v0.42.2): OpenCensus views
// exposed by its Prometheus exporter with the "revision" namespace
// (CONTRACT.md §5.3, the 1.15 table).
var Generation115 = &Generation{
	Name: "1.15",
	Instruments: []Instrument{
		{
			Name: "request_latencies", Description: helpRequestLatencies, Unit: "ms",
			Point: PointServer, Quantity: Duration, Scale: 1000, Buckets: LatencyBucketsMs, Attrs: attrs115Server,
			Families: []Family{
				{Name: MetricsNamespace + "_request_count", Help: helpRequestCount, Type: promCounter},
				{Name: MetricsNamespace + "_request_latencies", Help: helpRequestLatencies, Type: promHistogram},
			},
		},
		{
			Name: "app_request_latencies", Description: helpAppRequestLatency, Unit: "ms",
			Point: PointApp, Quantity: Duration, Scale: 1000, Buckets: LatencyBucketsMs, Attrs: attrs115App,
			Families: []Family{
				{Name: MetricsNamespace + "_app_request_count", Help: helpAppRequestCount, Type: promCounter},
				{Name: MetricsNamespace + "_app_request_latencies", Help: helpAppRequestLatency, Type: promHistogram},
			},
		},
	},
	QueueDepth: Instrument{
		Name: "queue_depth", Description: helpQueueDepth, Unit: "1",
		Families: []Family{{Name: MetricsNamespace + "_queue_depth", Help: helpQueueDepth, Type: promGauge}},
	},
	RouteTag:   RouteTagValues{Disabled: "DISABLED", Default: "DEFAULT", Undefined: "UNDEFINED"},
	Exposition: ExpositionOpenCensus,
	Spans: Spans{
		HTTP: SpansOCHTTP, Proxy: "queue_proxy", Wait: "queue_wait", Probe: "probe",
		Propagation: PropagateW3CB3,
	},
}

// GenerationNewest is the OpenTelemetry-era generation (serving v0.51.0,
// every Knative since 1.19; CONTRACT.md §5.2, §5.3).
var GenerationNewest = &Generation{
	Name: "newest",
	Instruments: []Instrument{
		{
			Name: "kn.serving.invocation.duration", Description: "The duration of task execution", Unit: "s",
			Point: PointApp, Quantity: Duration, Buckets: DurationBucketsSeconds, Attrs: attrsInvocation, Scope: ScopeQueue,
		},
		{
			Name: "http.server.request.duration", Description: "Duration of HTTP server requests.", Unit: "s",
			Point: PointServer, Quantity: Duration, Buckets: DurationBucketsSeconds, Attrs: attrsHTTPServer, Scope: ScopeOTelHTTP,
		},
		{
			Name: "http.server.request.body.size", Description: "Size of HTTP server request bodies.", Unit: "By",
			Point: PointServer, Quantity: RequestBodySize, Buckets: SizeBucketsBytes, Attrs: attrsHTTPServer, Scope: ScopeOTelHTTP,
		},
		{
			Name: "http.server.response.body.size", Description: "Size of HTTP server response bodies.", Unit: "By",
			Point: PointServer, Quantity: ResponseBodySize, Buckets: SizeBucketsBytes, Attrs: attrsHTTPServer, Scope: ScopeOTelHTTP,
		},
		{
			Name: "http.client.request.duration", Description: "Duration of HTTP client requests.", Unit: "s",
			Point: PointClient, Quantity: Duration, Buckets: DurationBucketsSeconds, Attrs: attrsHTTPClient, Scope: ScopeOTelHTTP,
		},
		{
			Name: "http.client.request.body.size", Description: "Size of HTTP client request bodies.", Unit: "By",
			Point: PointClient, Quantity: RequestBodySize, Buckets: SizeBucketsBytes, Attrs: attrsHTTPClient, Scope: ScopeOTelHTTP,
		},
	},
	QueueDepth: Instrument{
		Name: "kn.serving.queue.depth", Description: "Number of current requests in the queue", Unit: "{request}",
		Scope: ScopeQueue,
	},
	UpperInclusive: true,
	RouteTag:       RouteTagValues{Disabled: "kn:disabled", Default: "kn:default", Undefined: "kn:undefined"},
	Exposition:     ExpositionOTel,
	Spans: Spans{
		HTTP: SpansSemConv, Proxy: "kn.queueproxy.proxy", Wait: "kn.queueproxy.wait", ClientUnderWait: true,
		Propagation: PropagateW3C, QueueScope: ScopeQueue, HTTPScope: ScopeOTelHTTP,
	},
}

// scale is the instrument's multiplier of seconds or bytes.
func (in *Instrument) scale() float64 {
	if in.Scale == 0 {
		return 1
	}
	return in.Scale
}

// aggregationBounds are the bounds given to OpenCensus. OpenCensus counts a
// value equal to a bound in the next bucket; for a generation that counts
// it in the bound's own bucket, each bound is raised to the next float64,
// which makes "v < bound'" the same as "v <= bound" for every v.
func (g *Generation) aggregationBounds(bounds []float64) []float64 {
	if !g.UpperInclusive {
		return bounds
	}
	out := make([]float64, len(bounds))
	for i, b := range bounds {
		out[i] = math.Nextafter(b, math.Inf(1))
	}
	return out
}
