package observability

import (
	"net/url"
	"strings"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

func resourceMap(attrs []metricdata.Attr) map[string]string {
	m := map[string]string{}
	for _, a := range attrs {
		m[a.Key] = a.Text()
	}
	return m
}

func TestNewResource(t *testing.T) {
	tests := []struct {
		name    string
		in      ResourceInput
		want    map[string]string
		absent  []string
		wantErr string
	}{{
		name: "full identity; ours win over OTEL_RESOURCE_ATTRIBUTES",
		in: ResourceInput{Namespace: "ns", Service: "svc", Configuration: "cfg", Revision: "rev", PodName: "pod-1",
			Attributes: "k8s.namespace.name=wrong, deployment.environment = prod ,team=a%20b,container.name=x"},
		want: map[string]string{
			"container.name": "queue-proxy", "k8s.namespace.name": "ns", "k8s.pod.name": "pod-1",
			"service.instance.id": "pod-1", "service.name": "svc", "kn.service.name": "svc",
			"kn.configuration.name": "cfg", "kn.revision.name": "rev", "deployment.environment": "prod",
			"team": "a b", "telemetry.sdk.language": "go", "telemetry.sdk.name": "opentelemetry",
			"telemetry.sdk.version": "1.47.0",
		},
	}, {
		name: "OTEL_SERVICE_NAME first",
		in:   ResourceInput{Namespace: "ns", Service: "svc", Revision: "rev", ServiceName: "mine"},
		want: map[string]string{"service.name": "mine"},
	}, {
		name:   "no service: the configuration; empty kn names left out",
		in:     ResourceInput{Namespace: "ns", Configuration: "cfg", Revision: "rev"},
		want:   map[string]string{"service.name": "cfg", "k8s.pod.name": "", "service.instance.id": ""},
		absent: []string{"kn.service.name"},
	}, {
		name: "only the pod",
		in:   ResourceInput{PodName: "p"},
		want: map[string]string{"service.name": "p"},
	}, {
		name:    "malformed pairs: the good ones stay",
		in:      ResourceInput{Attributes: "a=1,broken,=x,b=%zz,c=3"},
		want:    map[string]string{"a": "1", "c": "3"},
		absent:  []string{"b", "broken"},
		wantErr: `OTEL_RESOURCE_ATTRIBUTES: "broken" is not key=value`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			attrs, err := NewResource(tc.in)
			if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			got := resourceMap(attrs)
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %q (present %v), want %q", k, g, ok, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s present, want absent", k)
				}
			}
			if got["service.version"] == "" {
				t.Error("service.version empty, want the VCS revision or unknown")
			}
			for i := 1; i < len(attrs); i++ {
				if attrs[i-1].Key >= attrs[i].Key {
					t.Fatalf("not sorted by key: %v", attrs)
				}
			}
		})
	}
}

// FuzzParseResourceAttributes: OTEL_RESOURCE_ATTRIBUTES comes from the
// pod spec. Every returned pair must have a non-empty trimmed key without
// '=' or ',' and a value that re-encodes to what was given.
func FuzzParseResourceAttributes(f *testing.F) {
	for _, s := range []string{"", "a=b", "a=b,c=d", " a = b ", "a", "=b", "a=%20", "a=%zz", ",,a=b,,", "a==b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pairs, err := ParseResourceAttributes(s)
		for _, p := range pairs {
			if p[0] == "" || p[0] != strings.TrimSpace(p[0]) || strings.ContainsAny(p[0], "=,") {
				t.Errorf("bad key %q from %q", p[0], s)
			}
			if _, uerr := url.PathUnescape(url.PathEscape(p[1])); uerr != nil {
				t.Errorf("value %q does not round-trip", p[1])
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "OTEL_RESOURCE_ATTRIBUTES: ") {
			t.Errorf("error %q does not name the variable", err)
		}
	})
}
