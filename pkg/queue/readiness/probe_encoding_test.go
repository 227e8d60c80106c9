package readiness

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		value string
		multi bool
		want  []*Probe
	}{{
		name: "empty value: no probes",
	}, {
		name:  "Knative's default TCP probe",
		value: `{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}`,
		want:  []*Probe{{TCPSocket: &TCPSocketAction{Port: Port{Number: 8080}, Host: "127.0.0.1"}, SuccessThreshold: 1}},
	}, {
		name: "HTTP probe with every field",
		value: `{"httpGet":{"path":"/healthz","port":8080,"host":"127.0.0.1","scheme":"HTTP",
			"httpHeaders":[{"name":"X-Custom","value":"a"},{"name":"x-custom","value":"b"}]},
			"initialDelaySeconds":2,"timeoutSeconds":3,"periodSeconds":4,"successThreshold":5,"failureThreshold":6,
			"terminationGracePeriodSeconds":7}`,
		want: []*Probe{{
			HTTPGet: &HTTPGetAction{Path: "/healthz", Port: Port{Number: 8080}, Host: "127.0.0.1", Scheme: "HTTP",
				HTTPHeaders: []HTTPHeader{{"X-Custom", "a"}, {"x-custom", "b"}}},
			InitialDelaySeconds: 2, TimeoutSeconds: 3, PeriodSeconds: 4, SuccessThreshold: 5, FailureThreshold: 6,
		}},
	}, {
		name:  "HTTP path without leading slash, HTTPS, no host",
		value: `{"httpGet":{"path":"healthz","port":8443,"scheme":"HTTPS"}}`,
		want:  []*Probe{{HTTPGet: &HTTPGetAction{Path: "healthz", Port: Port{Number: 8443}, Scheme: "HTTPS"}}},
	}, {
		name:  "gRPC probe",
		value: `{"grpc":{"port":9000,"service":"my.Svc"},"periodSeconds":1,"timeoutSeconds":1}`,
		want:  []*Probe{{GRPC: &GRPCAction{Port: Port{Number: 9000}, Service: "my.Svc"}, PeriodSeconds: 1, TimeoutSeconds: 1}},
	}, {
		name:  "gRPC probe with null service",
		value: `{"grpc":{"port":9000,"service":null}}`,
		want:  []*Probe{{GRPC: &GRPCAction{Port: Port{Number: 9000}}}},
	}, {
		name:  "numeric string port",
		value: `{"tcpSocket":{"port":"8080"}}`,
		want:  []*Probe{{TCPSocket: &TCPSocketAction{Port: Port{Name: "8080"}}}},
	}, {
		name:  "exec next to a handler: the handler wins, as in Knative",
		value: `{"tcpSocket":{"port":8080},"exec":{"command":["true"]}}`,
		want:  []*Probe{{TCPSocket: &TCPSocketAction{Port: Port{Number: 8080}}, Exec: &ExecAction{Command: []string{"true"}}}},
	}, {
		name:  "multi-container: user container first, then sidecars",
		multi: true,
		value: ` [{"httpGet":{"port":8080,"scheme":"HTTP","path":"/"}},{"tcpSocket":{"port":8081}},{"grpc":{"port":8082}}]`,
		want: []*Probe{
			{HTTPGet: &HTTPGetAction{Port: Port{Number: 8080}, Scheme: "HTTP", Path: "/"}},
			{TCPSocket: &TCPSocketAction{Port: Port{Number: 8081}}},
			{GRPC: &GRPCAction{Port: Port{Number: 8082}}},
		},
	}, {
		name:  "multi-container, empty list: always ready, as in Knative",
		multi: true,
		value: `[]`,
		want:  []*Probe{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.value, tt.multi)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tt.want)
				t.Errorf("Decode = %s, want %s", g, w)
			}
			if _, err := NewProber(got, Options{}); err != nil {
				t.Errorf("NewProber: %v", err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		multi   bool
		wantErr string
	}{
		{"malformed JSON", `{"tcpSocket":`, false, "malformed probe JSON: unexpected end of JSON input"},
		{"trailing garbage", `{"tcpSocket":{"port":1}} x`, false, "malformed probe JSON"},
		{"wrong field type", `{"periodSeconds":"1","tcpSocket":{"port":1}}`, false, "malformed probe JSON"},
		{"fractional port", `{"tcpSocket":{"port":80.5}}`, false, "malformed probe JSON"},
		{"port beyond int32", `{"tcpSocket":{"port":4294967297}}`, false, "malformed probe JSON"},
		{"whitespace only", ` `, false, "malformed probe JSON"},
		{"exec probe", `{"exec":{"command":["cat","/ready"]}}`, false, "exec probe not supported"},
		{"no handler", `{"periodSeconds":1}`, false, "no probe found"},
		{"null", `null`, false, "no probe found"},
		{"named port", `{"httpGet":{"port":"http","scheme":"HTTP"}}`, false, `httpGet.port: named port "http" cannot be resolved`},
		{"named TCP port", `{"tcpSocket":{"port":"web"}}`, false, `tcpSocket.port: named port "web"`},
		{"named gRPC port", `{"grpc":{"port":"grpc"}}`, false, `grpc.port: named port "grpc"`},
		{"missing port", `{"tcpSocket":{"host":"127.0.0.1"}}`, false, "tcpSocket.port: port 0 is missing or out of range"},
		{"negative port", `{"grpc":{"port":-1}}`, false, "grpc.port: port -1 is missing or out of range"},
		{"port too big", `{"tcpSocket":{"port":65536}}`, false, "port 65536 is missing or out of range"},
		{"empty scheme", `{"httpGet":{"port":8080}}`, false, "httpGet.scheme: missing protocol scheme"},
		{"unknown scheme", `{"httpGet":{"port":8080,"scheme":"FTP"}}`, false, `unsupported protocol scheme "FTP"`},
		{"bad header name", `{"httpGet":{"port":8080,"scheme":"HTTP","httpHeaders":[{"name":"X Bad","value":"v"}]}}`, false, `invalid header name "X Bad"`},
		{"bad header value", `{"httpGet":{"port":8080,"scheme":"HTTP","httpHeaders":[{"name":"X","value":"a\nb"}]}}`, false, `invalid value for header "X"`},
		{"bad path", `{"httpGet":{"port":8080,"scheme":"HTTP","path":"/%zz"}}`, false, "httpGet: parse"},
		{"array without multi", `[{"tcpSocket":{"port":1}}]`, false, "must be one JSON probe object, not an array"},
		{"object with multi", `{"tcpSocket":{"port":1}}`, true, "must be a JSON array of probes"},
		{"null with multi", `null`, true, "must be a JSON array"},
		{"malformed array", `[{"tcpSocket":{"port":1}},`, true, "malformed probe JSON"},
		{"null element", `[{"tcpSocket":{"port":1}},null]`, true, "probe 1: null probe"},
		{"exec sidecar", `[{"tcpSocket":{"port":1}},{"exec":{"command":["x"]}}]`, true, "probe 1: exec probe not supported"},
		{"empty sidecar", `[{"tcpSocket":{"port":1}},{}]`, true, "probe 1: no probe found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.value, tt.multi)
			if err == nil {
				t.Fatalf("Decode = %v, want an error containing %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decode error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewProberValidates(t *testing.T) {
	for name, probes := range map[string][]*Probe{
		"nil probe":  {nil},
		"exec":       {{Exec: &ExecAction{}}},
		"no handler": {{}},
		"bad port":   {{TCPSocket: &TCPSocketAction{Port: Port{Name: "x"}}}},
	} {
		if _, err := NewProber(probes, Options{}); err == nil {
			t.Errorf("%s: NewProber accepted an invalid probe", name)
		}
	}
}

func TestPortJSON(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Port
		out  string
	}{
		{`8080`, Port{Number: 8080}, `8080`},
		{`"8080"`, Port{Name: "8080"}, `"8080"`},
		{`"http"`, Port{Name: "http"}, `"http"`},
		{`null`, Port{}, `0`},
	} {
		var p Port
		if err := json.Unmarshal([]byte(tt.in), &p); err != nil || p != tt.want {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", tt.in, p, err, tt.want)
		}
		if b, err := json.Marshal(p); err != nil || string(b) != tt.out {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", p, b, err, tt.out)
		}
	}
}

// FuzzDecode: Decode never panics; what it accepts can be run (NewProber)
// and survives a JSON round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}`,
		`{"httpGet":{"path":"healthz","port":"8080","scheme":"HTTP","httpHeaders":[{"name":"X","value":"y"}]},"periodSeconds":1,"timeoutSeconds":1}`,
		`{"grpc":{"port":9000,"service":"s"}}`,
		`[{"tcpSocket":{"port":1}},{"grpc":{"port":2}},null]`,
		`{"exec":{"command":["x"]}}`,
		`{}`, `[]`, `null`, `{"httpGet":{"port":"http"}}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, value string, multi bool) {
		probes, err := Decode(value, multi)
		if err != nil {
			if probes != nil {
				t.Fatalf("Decode returned probes and error %v", err)
			}
			return
		}
		if value != "" && probes == nil {
			t.Fatalf("Decode(%q) = nil without an error", value)
		}
		if !multi && value != "" && len(probes) != 1 {
			t.Fatalf("single-probe Decode returned %d probes", len(probes))
		}
		if _, err := NewProber(probes, Options{}); err != nil {
			t.Fatalf("Decode accepted %q but NewProber refused it: %v", value, err)
		}
		if value == "" {
			return
		}
		var v any = probes
		if !multi {
			v = probes[0]
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := Decode(string(enc), multi)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		v = again
		if !multi {
			v = again[0]
		}
		enc2, _ := json.Marshal(v)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed %s into %s", enc, enc2)
		}
	})
}
