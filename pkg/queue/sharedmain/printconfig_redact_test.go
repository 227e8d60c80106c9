package sharedmain

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestRedactString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://user:pw@zipkin:9411/api/v2/spans", "http://<redacted>@zipkin:9411/api/v2/spans"},
		{"https://token@collector", "https://<redacted>@collector"},
		{"http://u:p@ss@host/p", "http://<redacted>@host/p"},
		{"user:pw@collector:4317", "<redacted>@collector:4317"},
		{"http://host/p?api_key=k1&x=1", "http://host/p?api_key=<redacted>&x=1"},
		{"http://host/p?x=1&access_token=t1#frag", "http://host/p?x=1&access_token=<redacted>#frag"},
		{"http://host/p?X-Amz-Signature=s1", "http://host/p?X-Amz-Signature=<redacted>"},
		{"http://host/p?q=1&empty_token=", "http://host/p?q=1&empty_token="},
		{"see http://u:p@h:1/x and https://v:q@i/y", "see http://<redacted>@h:1/x and https://<redacted>@i/y"},
		{"http://host/a@b", "http://host/a@b"},
		{"a@b c", "a@b c"},
		{"/path/with@sign", "/path/with@sign"},
		{"127.0.0.1:8023", "127.0.0.1:8023"},
		{"{{.Request.URL}}", "{{.Request.URL}}"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := redactString(tc.in); got != tc.want {
			t.Errorf("redactString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCredentialName(t *testing.T) {
	cases := map[string]bool{
		"Authorization": true, "proxy-authorization": true, "X-API-Key": true, "api_key": true, "apikey": true,
		"access_token": true, "X-Auth-Token": true, "Cookie": true, "password": true, "client.secret": true,
		"DD-API-KEY": true, "x-amz-security-token": true, "X-Goog-Api-Key": true,
		"X-Plain": false, "Content-Type": false, "METRICS_PROMETHEUS_TLS_KEY": false, "host": false, "monkey": false,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY": false,
	}
	for name, want := range cases {
		if got := credentialName(name); got != want {
			t.Errorf("credentialName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRedactHeaderList(t *testing.T) {
	cases := []struct{ in, want string }{
		{"api-key=k1,x-tenant=t1", "api-key=<redacted>,x-tenant=<redacted>"},
		{"Authorization=Basic a=b", "Authorization=<redacted>"},
		{"junk", "<redacted>"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := redactHeaderList(tc.in); got != tc.want {
			t.Errorf("redactHeaderList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactJSONText(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{
			name: "probe headers: credential names only",
			in:   `{"httpGet":{"httpHeaders":[{"name":"Authorization","value":"Bearer x"},{"name":"X-Plain","value":"v"},{"name":"X-Api-Key","value":""}]}}`,
			want: `{"httpGet":{"httpHeaders":[{"name":"Authorization","value":"<redacted>"},{"name":"X-Plain","value":"v"},{"name":"X-Api-Key","value":"<redacted>"}]}}`,
		},
		{
			name: "headers members: every value",
			in:   `{"a":{"headers":{"x-tenant":"t","n":1}},"b":{"Headers":"k=v,l=w"},"c":{"headers":[{"name":"k","value":"v"}]}}`,
			want: `{"a":{"headers":{"n":"<redacted>","x-tenant":"<redacted>"}},"b":{"Headers":"k=<redacted>,l=<redacted>"},"c":{"headers":[{"name":"k","value":"<redacted>"}]}}`,
		},
		{
			name: "credential members, URLs, numbers kept exact",
			in:   `{"password":"p","token":"","nested":[{"clientSecret":"s"}],"endpoint":"http://u:p@h:1","rate":0.10000000000000001,"big":12345678901234567890}`,
			want: `{"big":12345678901234567890,"endpoint":"http://<redacted>@h:1","nested":[{"clientSecret":"<redacted>"}],"password":"<redacted>","rate":0.10000000000000001,"token":""}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := redactJSONText([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) || string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestEnvValue: how the env section shows a variable's value.
func TestEnvValue(t *testing.T) {
	cases := []struct {
		name  string
		value any
		want  string // JSON
	}{
		{"SERVING_SERVICE", "hello", `"hello"`},
		{"OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2", `"a=<redacted>,b=<redacted>"`},
		{"QP_API_TOKEN", "t0ken", `"<redacted>"`},
		{"QP_API_TOKEN", "", `""`},
		{"TRACING_CONFIG_ZIPKIN_ENDPOINT", "http://u:p@z:9411/api/v2/spans", `"http://<redacted>@z:9411/api/v2/spans"`},
		{"SERVING_READINESS_PROBE", ` {"tcpSocket":{"port":8080}}`, `{"tcpSocket":{"port":8080}}`},
		{"SERVING_LOGGING_CONFIG", `{"level":`, `"{\"level\":"`},
		{"TRACING_CONFIG_SAMPLE_RATE", 0.25, `0.25`},
		{"TRACING_CONFIG_SAMPLE_RATE", nan(), `"NaN"`},
		{"CONTAINER_CONCURRENCY", 10, `10`},
		{"ENABLE_PROFILING", true, `true`},
		{"QP_DRAIN_QUIET_PERIOD", durationOf("1m30s"), `"1m30s"`},
	}
	for _, tc := range cases {
		got, err := marshalJSON(envValue(tc.name, reflect.ValueOf(tc.value)))
		if err != nil {
			t.Errorf("%s=%v: %v", tc.name, tc.value, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s=%v: %s, want %s", tc.name, tc.value, got, tc.want)
		}
	}
}

func nan() float64 { return math.NaN() }

func durationOf(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}
