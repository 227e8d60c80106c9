package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/queue-proxy/queue-proxy/test/harness"
)

// famKind is a Prometheus metric type; it decides which series a family
// has.
type famKind string

const (
	kindCounter   famKind = "counter"
	kindGauge     famKind = "gauge"
	kindHistogram famKind = "histogram"
	kindSummary   famKind = "summary"
)

// family is one row of a CONTRACT.md §5.3 table, as Prometheus stores it.
type family struct {
	name     string
	kind     famKind
	labels   []string          // label names every series has
	optional []string          // label names a series may have as well
	values   map[string]string // labels with a fixed value
	help     string            // the HELP text, when the contract fixes it
	check    func(series []map[string]string) error
}

// seriesNames are the names under which Prometheus stores the family, each
// with the extra label that name carries.
func (f family) seriesNames() map[string]string {
	switch f.kind {
	case kindHistogram:
		return map[string]string{f.name + "_bucket": "le", f.name + "_sum": "", f.name + "_count": ""}
	case kindSummary:
		return map[string]string{f.name: "quantile", f.name + "_sum": "", f.name + "_count": ""}
	default:
		return map[string]string{f.name: ""}
	}
}

// checkFamilies checks that each family is in series (by name, without the
// target's labels) with exactly the label names of its row, and the fixed
// values.
func checkFamilies(t *testing.T, series map[string][]map[string]string, fams []family) {
	t.Helper()
	for _, f := range fams {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(f.seriesNames())), func(n string) bool { return len(series[n]) > 0 }) {
			t.Errorf("%s: missing (§5.3 %s)", f.name, f.kind)
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(f.seriesNames())) {
			extra := f.seriesNames()[name]
			ss := series[name]
			if len(ss) == 0 {
				t.Errorf("%s: no series %s (§5.3 %s)", f.name, name, f.kind)
				continue
			}
			required := slices.Clone(f.labels)
			if extra != "" {
				required = append(required, extra)
			}
			// One report per name: the first bad series and how many.
			bad, first := 0, ""
			for _, s := range ss {
				if msg := labelMismatch(s, required, f.optional, f.values); msg != "" {
					if bad == 0 {
						first = formatLabels(s) + ": " + msg
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%s: %d of %d series %s are wrong; the first: %s", f.name, bad, len(ss), name, first)
			}
		}
		if f.check != nil {
			if err := f.check(series[f.seriesName()]); err != nil {
				t.Errorf("%s: %v", f.name, err)
			}
		}
	}
}

// seriesName is the name of the series a family's check looks at: the
// metric itself, or the _count of a histogram.
func (f family) seriesName() string {
	if f.kind == kindHistogram {
		return f.name + "_count"
	}
	return f.name
}

// labelMismatch explains how s differs from the wanted label names and
// values, or returns "".
func labelMismatch(s map[string]string, required, optional []string, values map[string]string) string {
	var problems []string
	for _, l := range required {
		if _, ok := s[l]; !ok {
			problems = append(problems, "lacks label "+l)
		}
	}
	for _, l := range slices.Sorted(maps.Keys(s)) {
		if !slices.Contains(required, l) && !slices.Contains(optional, l) {
			problems = append(problems, "has unexpected label "+l)
		}
	}
	for _, l := range slices.Sorted(maps.Keys(values)) {
		if v, ok := s[l]; ok && v != values[l] {
			problems = append(problems, fmt.Sprintf("%s=%q, want %q", l, v, values[l]))
		}
	}
	return strings.Join(problems, "; ")
}

func formatLabels(s map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		parts = append(parts, k+"="+strconv.Quote(s[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// valuesOf checks that label l takes exactly the values want across series.
func valuesOf(l string, want ...string) func([]map[string]string) error {
	return func(series []map[string]string) error {
		seen := map[string]bool{}
		for _, s := range series {
			seen[s[l]] = true
		}
		if got := slices.Sorted(maps.Keys(seen)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("label %s takes the values %q, want %q", l, got, want)
		}
		return nil
	}
}

// codeClassMatches checks response_code_class = first digit + "xx".
func codeClassMatches(series []map[string]string) error {
	for _, s := range series {
		if code := s["response_code"]; code == "" || s["response_code_class"] != code[:1]+"xx" {
			return fmt.Errorf("series %s: response_code_class does not match response_code", formatLabels(s))
		}
	}
	return nil
}

// families115 is the 1.15 table of §5.3 for knativeEnv. revision_go_*
// appear only after the 30 s MemStats period, too late for this test.
func families115() []family {
	common := []string{"configuration_name", "container_name", "namespace_name", "pod_name", "revision_name", "service_name"}
	values := map[string]string{
		"configuration_name": wantConfiguration, "container_name": "queue-proxy", "namespace_name": wantNamespace,
		"pod_name": podName, "revision_name": wantRevision, "service_name": wantService,
	}
	withRoute := append(slices.Clone(common), "response_code", "response_code_class", "route_tag")
	app := append(slices.Clone(common), "response_code", "response_code_class")
	var tags []string
	for _, r := range promTraffic {
		if !slices.Contains(tags, r.tag115) {
			tags = append(tags, r.tag115)
		}
	}
	return []family{
		{name: "revision_request_count", kind: kindCounter, labels: withRoute, values: values,
			check: func(s []map[string]string) error {
				if err := codeClassMatches(s); err != nil {
					return err
				}
				return valuesOf("route_tag", tags...)(s)
			}},
		{name: "revision_request_latencies", kind: kindHistogram, labels: withRoute, values: values, check: codeClassMatches},
		{name: "revision_app_request_count", kind: kindCounter, labels: app, values: values, check: codeClassMatches},
		{name: "revision_app_request_latencies", kind: kindHistogram, labels: app, values: values, check: codeClassMatches},
		// response_code="" and response_code_class="" are, to Prometheus,
		// no label at all.
		{name: "revision_queue_depth", kind: kindGauge, labels: common, values: values},
	}
}

// Instrumentation scopes of the newest generation (§5.3, §5.5).
const (
	scopeQueue   = "knative.dev/serving/pkg/queue"
	scopeHTTP    = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	scopeRuntime = "go.opentelemetry.io/contrib/instrumentation/runtime"
)

// familiesNewest is the v0.51.0 table of §5.3 as the OTel Prometheus
// exporter (UnderscoreEscapingWithSuffixes) writes it and Prometheus stores
// it. The exporter puts otel_scope_name, otel_scope_version and
// otel_scope_schema_url on every OTel series; Prometheus drops labels with
// an empty value, so the version is there only for scopes that have one
// (otelhttp and runtime do, Knative's meter does not) and the schema URL
// may be absent.
func familiesNewest(p harness.Ports) []family {
	scoped := func(scope string, versioned bool, labels ...string) ([]string, []string, map[string]string) {
		req := append([]string{"otel_scope_name"}, labels...)
		opt := []string{"otel_scope_schema_url"}
		if versioned {
			req = append(req, "otel_scope_version")
		} else {
			opt = append(opt, "otel_scope_version")
		}
		return req, opt, map[string]string{"otel_scope_name": scope}
	}
	fam := func(name string, kind famKind, scope string, versioned bool, fixed map[string]string, labels ...string) family {
		req, opt, values := scoped(scope, versioned, labels...)
		maps.Copy(values, fixed)
		return family{name: name, kind: kind, labels: req, optional: opt, values: values}
	}

	var fams []family
	invocation := fam("kn_serving_invocation_duration_seconds", kindHistogram, scopeQueue, false, nil, "http_response_status_code")
	invocation.help = "The duration of task execution"
	depth := fam("kn_serving_queue_depth", kindGauge, scopeQueue, false, nil)
	depth.help = "Number of current requests in the queue"
	fams = append(fams, invocation, depth)

	httpCommon := map[string]string{
		"http_request_method": "GET", "network_protocol_name": "http", "network_protocol_version": "1.1",
		"server_address": "127.0.0.1", "url_scheme": "http",
	}
	server := maps.Clone(httpCommon)
	server["server_port"] = strconv.Itoa(p.Main)
	client := maps.Clone(httpCommon)
	client["server_port"] = strconv.Itoa(p.User)
	var tags []string
	for _, r := range promTraffic {
		if !slices.Contains(tags, r.tagNew) {
			tags = append(tags, r.tagNew)
		}
	}
	for _, name := range []string{"http_server_request_duration_seconds", "http_server_request_body_size_bytes", "http_server_response_body_size_bytes"} {
		f := fam(name, kindHistogram, scopeHTTP, true, server, "http_request_method", "http_response_status_code", "kn_route_tag",
			"network_protocol_name", "network_protocol_version", "server_address", "server_port", "url_scheme")
		f.optional = append(f.optional, "error_type")
		f.check = valuesOf("kn_route_tag", tags...)
		fams = append(fams, f)
	}
	for _, name := range []string{"http_client_request_duration_seconds", "http_client_request_body_size_bytes"} {
		f := fam(name, kindHistogram, scopeHTTP, true, client, "http_request_method", "http_response_status_code",
			"network_protocol_name", "network_protocol_version", "server_address", "server_port", "url_scheme")
		f.optional = append(f.optional, "error_type")
		fams = append(fams, f)
	}

	// OTel runtime instrumentation (contrib runtime v0.72.0). The memory
	// limit appears only with a GOMEMLIMIT and is not checked.
	used := fam("go_memory_used_bytes", kindGauge, scopeRuntime, true, nil, "go_memory_type")
	used.check = valuesOf("go_memory_type", "other", "stack")
	fams = append(fams, used,
		fam("go_memory_allocated_bytes_total", kindCounter, scopeRuntime, true, nil),
		fam("go_memory_allocations_total", kindCounter, scopeRuntime, true, nil),
		fam("go_memory_gc_goal_bytes", kindGauge, scopeRuntime, true, nil),
		fam("go_goroutine_count", kindGauge, scopeRuntime, true, nil),
		fam("go_processor_limit", kindGauge, scopeRuntime, true, nil),
		fam("go_config_gogc_percent", kindGauge, scopeRuntime, true, nil),
	)

	// The Prometheus default registry's collectors: no scope labels.
	fams = append(fams,
		family{name: "go_gc_duration_seconds", kind: kindSummary},
		family{name: "go_goroutines", kind: kindGauge},
		family{name: "go_info", kind: kindGauge, labels: []string{"version"}},
		family{name: "go_threads", kind: kindGauge},
		family{name: "go_gc_gogc_percent", kind: kindGauge},
		family{name: "go_gc_gomemlimit_bytes", kind: kindGauge},
		family{name: "go_sched_gomaxprocs_threads", kind: kindGauge},
		family{name: "promhttp_metric_handler_requests_total", kind: kindCounter, labels: []string{"code"},
			check: valuesOf("code", "200", "500", "503")},
		family{name: "promhttp_metric_handler_requests_in_flight", kind: kindGauge},
	)
	for _, n := range []string{"alloc_bytes", "sys_bytes", "heap_alloc_bytes", "heap_sys_bytes", "heap_idle_bytes",
		"heap_inuse_bytes", "heap_released_bytes", "heap_objects", "stack_inuse_bytes", "stack_sys_bytes",
		"mspan_inuse_bytes", "mspan_sys_bytes", "mcache_inuse_bytes", "mcache_sys_bytes", "buck_hash_sys_bytes",
		"gc_sys_bytes", "other_sys_bytes", "next_gc_bytes", "last_gc_time_seconds"} {
		fams = append(fams, family{name: "go_memstats_" + n, kind: kindGauge})
	}
	for _, n := range []string{"alloc_bytes_total", "mallocs_total", "frees_total"} {
		fams = append(fams, family{name: "go_memstats_" + n, kind: kindCounter})
	}
	for _, n := range []string{"open_fds", "max_fds", "virtual_memory_bytes", "virtual_memory_max_bytes",
		"resident_memory_bytes", "start_time_seconds"} {
		fams = append(fams, family{name: "process_" + n, kind: kindGauge})
	}
	for _, n := range []string{"cpu_seconds_total", "network_receive_bytes_total", "network_transmit_bytes_total"} {
		fams = append(fams, family{name: "process_" + n, kind: kindCounter})
	}

	// The resource (§5.2) as target_info, with the SDK's own attributes.
	resource := map[string]string{
		"container_name": "queue-proxy", "k8s_namespace_name": wantNamespace, "k8s_pod_name": podName,
		"service_name": wantService, "service_instance_id": podName, "kn_service_name": wantService,
		"kn_configuration_name": wantConfiguration, "kn_revision_name": wantRevision,
		"telemetry_sdk_language": "go", "telemetry_sdk_name": "opentelemetry",
	}
	fams = append(fams, family{name: "target_info", kind: kindGauge, values: resource,
		labels: append(slices.Sorted(maps.Keys(resource)), "service_version", "telemetry_sdk_version")})
	return fams
}

// promMetadata is an entry of /api/v1/metadata: what the # TYPE and # HELP
// lines of a scrape said.
type promMetadata struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// checkMetadata checks the type (and the help text, where the contract
// fixes it) of each family that has series; missing families are
// checkFamilies' to report.
func (ps *prometheusServer) checkMetadata(t *testing.T, series map[string][]map[string]string, fams []family) {
	t.Helper()
	md := apiGet[map[string][]promMetadata](t, ps, "metadata")
	for _, f := range fams {
		if len(series[f.seriesName()]) == 0 {
			continue
		}
		entries := md[f.name]
		if len(entries) == 0 {
			t.Errorf("%s: prometheus has no metadata (# TYPE) for it", f.name)
			continue
		}
		for _, e := range entries {
			if e.Type != string(f.kind) {
				t.Errorf("%s: type %q, want %q (§5.3)", f.name, e.Type, f.kind)
			}
			if f.help != "" && e.Help != f.help {
				t.Errorf("%s: help %q, want %q (§5.3)", f.name, e.Help, f.help)
			}
		}
	}
}
