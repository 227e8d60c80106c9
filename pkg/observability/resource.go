package observability

import (
	"errors"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// Facts of the OpenTelemetry Go SDK that Knative's newest generation links
// (go.opentelemetry.io/otel/sdk v1.47.0): resource.Default() describes the
// SDK with them, and its schema is that of the semantic conventions v1.43.0.
const (
	ResourceSchemaURL = "https://opentelemetry.io/schemas/1.43.0"
	sdkName           = "opentelemetry"
	sdkLanguage       = "go"
	sdkVersion        = "1.47.0"
)

// ResourceInput is what the resource is made of: the revision's identity
// and the environment variables the OpenTelemetry SDK and Knative read.
type ResourceInput struct {
	Namespace, Service, Configuration, Revision string
	// PodName is POD_NAME, else HOSTNAME (not SERVING_POD: CONTRACT.md §1b).
	PodName string
	// ServiceName is OTEL_SERVICE_NAME.
	ServiceName string
	// Attributes is OTEL_RESOURCE_ATTRIBUTES.
	Attributes string
}

// NewResource returns the newest generation's resource (CONTRACT.md §5.2),
// sorted by key: the SDK's defaults (telemetry.sdk.*, and the attributes of
// OTEL_RESOURCE_ATTRIBUTES) under Knative's own, which win on conflicts:
// container.name, k8s.namespace.name, k8s.pod.name, service.instance.id,
// service.name, service.version, and kn.{service,configuration,revision}.name
// when not empty. service.name is the first non-empty of OTEL_SERVICE_NAME,
// the service, configuration and revision names, and the pod name.
//
// A malformed OTEL_RESOURCE_ATTRIBUTES is not fatal (the SDK only reports
// it): its well-formed pairs are kept and err says what was wrong.
func NewResource(in ResourceInput) (attrs []metricdata.Attr, err error) {
	set := map[string]string{
		"telemetry.sdk.language": sdkLanguage,
		"telemetry.sdk.name":     sdkName,
		"telemetry.sdk.version":  sdkVersion,
	}
	env, err := ParseResourceAttributes(in.Attributes)
	for _, kv := range env {
		set[kv[0]] = kv[1]
	}
	serviceName := firstNonEmpty(in.ServiceName, in.Service, in.Configuration, in.Revision, in.PodName)
	for k, v := range map[string]string{
		"container.name":      ContainerName,
		"k8s.namespace.name":  in.Namespace,
		"k8s.pod.name":        in.PodName,
		"service.instance.id": in.PodName,
		"service.name":        serviceName,
		"service.version":     buildRevision(),
	} {
		set[k] = v
	}
	for k, v := range map[string]string{
		"kn.service.name":       in.Service,
		"kn.configuration.name": in.Configuration,
		"kn.revision.name":      in.Revision,
	} {
		if v != "" {
			set[k] = v
		}
	}
	for k, v := range set {
		attrs = append(attrs, metricdata.String(k, v))
	}
	slices.SortFunc(attrs, func(a, b metricdata.Attr) int { return strings.Compare(a.Key, b.Key) })
	return attrs, err
}

// ParseResourceAttributes decodes OTEL_RESOURCE_ATTRIBUTES:
// "key1=value1,key2=value2", values percent-decoded, spaces around keys and
// values trimmed, empty items skipped. Well-formed pairs are returned even
// when others are not; err names the first bad one.
func ParseResourceAttributes(s string) (pairs [][2]string, err error) {
	for item := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			if err == nil {
				err = errors.New("OTEL_RESOURCE_ATTRIBUTES: " + strconv.Quote(item) + " is not key=value")
			}
			continue
		}
		dv, derr := url.PathUnescape(strings.TrimSpace(v))
		if derr != nil {
			if err == nil {
				err = errors.New("OTEL_RESOURCE_ATTRIBUTES: the value of " + strconv.Quote(k) + " is not percent-encoded correctly")
			}
			continue
		}
		pairs = append(pairs, [2]string{k, dv})
	}
	return pairs, err
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// buildRevision is the binary's VCS revision, or "unknown".
func buildRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}
