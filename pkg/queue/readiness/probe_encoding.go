// Package readiness decodes SERVING_READINESS_PROBE and runs the user
// container's readiness probes the way Knative's queue-proxy does
// (CONTRACT.md §4): standard and aggressive probing, all probes of a
// multi-container set at once, concurrent callers sharing one run.
package readiness

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Probe is one readiness probe as SERVING_READINESS_PROBE carries it: the
// JSON of a Kubernetes corev1.Probe after Knative's reconciler has filled in
// host, port and scheme. It is our own type so that the binary does not
// import k8s.io/api. Fields Kubernetes defines that the queue-proxy does
// not use (terminationGracePeriodSeconds, ...) are ignored when decoding.
type Probe struct {
	Exec      *ExecAction      `json:"exec,omitempty"`
	HTTPGet   *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC      *GRPCAction      `json:"grpc,omitempty"`

	// InitialDelaySeconds and FailureThreshold are kubelet's business (it
	// probes the queue-proxy with them); they are accepted and unused.
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	// TimeoutSeconds bounds a standard-mode attempt.
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// PeriodSeconds selects the mode: > 0 standard, otherwise aggressive.
	PeriodSeconds int32 `json:"periodSeconds,omitempty"`
	// SuccessThreshold is the number of consecutive successes aggressive
	// mode needs (at least 1).
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

// ExecAction is an exec probe. The queue-proxy cannot run commands in the
// user container; the reconciler replaces exec probes with TCP ones, so one
// reaching us is a startup error.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// HTTPGetAction is an HTTP GET probe.
type HTTPGetAction struct {
	// Path, with or without its leading slash.
	Path string `json:"path,omitempty"`
	Port Port   `json:"port"`
	// Host defaults to 127.0.0.1.
	Host string `json:"host,omitempty"`
	// Scheme is HTTP or HTTPS; it must be set (the reconciler does).
	Scheme      string       `json:"scheme,omitempty"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one custom header of an HTTP probe.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction is a TCP connect probe.
type TCPSocketAction struct {
	Port Port `json:"port"`
	// Host defaults to 127.0.0.1.
	Host string `json:"host,omitempty"`
}

// GRPCAction is a grpc.health.v1 probe of 127.0.0.1:Port.
type GRPCAction struct {
	Port    Port   `json:"port"`
	Service string `json:"service,omitempty"`
}

// Port is a probe port: a JSON number, or a string as Kubernetes'
// IntOrString allows. The queue-proxy cannot look up a container's named
// ports, and the reconciler always resolves them to numbers (CONTRACT.md
// §4.1), so a string is accepted only if it holds a number.
type Port struct {
	Number int32
	// Name is the string form, if the JSON held one.
	Name string
}

// UnmarshalJSON accepts a number or a string.
func (p *Port) UnmarshalJSON(b []byte) error {
	*p = Port{}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &p.Name)
	}
	return json.Unmarshal(b, &p.Number)
}

// MarshalJSON writes the string form if there is one, else the number.
func (p Port) MarshalJSON() ([]byte, error) {
	if p.Name != "" {
		return json.Marshal(p.Name)
	}
	return strconv.AppendInt(nil, int64(p.Number), 10), nil
}

// resolve returns the port number, which must be in 1-65535.
func (p Port) resolve() (int, error) {
	n := int(p.Number)
	if p.Name != "" {
		var err error
		if n, err = strconv.Atoi(p.Name); err != nil {
			return 0, errors.New("named port " + strconv.Quote(p.Name) +
				" cannot be resolved by the queue-proxy; the probe must give the port number")
		}
	}
	if n < 1 || n > 65535 {
		return 0, errors.New("port " + strconv.Itoa(n) + " is missing or out of range 1-65535")
	}
	return n, nil
}

// Decode parses SERVING_READINESS_PROBE: one probe object or, with multi
// (ENABLE_MULTI_CONTAINER_PROBES), a JSON array of probes, the user
// container's first. An empty value means no probes (always ready).
//
// Every probe is validated, so that what would only fail at probe time in
// Knative fails at startup here, naming the problem: malformed JSON, a null
// array element, an exec probe, a probe without a handler, a named or
// out-of-range port, an HTTP probe without a (known) scheme or with an
// invalid header name or path.
func Decode(value string, multi bool) ([]*Probe, error) {
	if value == "" {
		return nil, nil
	}
	trimmed := bytes.TrimLeft([]byte(value), " \t\r\n")
	isArray := len(trimmed) > 0 && trimmed[0] == '['
	if multi && !isArray {
		return nil, errors.New("multi-container probes are enabled, so the value must be a JSON array of probes")
	}
	if !multi && isArray {
		return nil, errors.New("multi-container probes are disabled, so the value must be one JSON probe object, not an array")
	}

	var probes []*Probe
	if multi {
		if err := json.Unmarshal(trimmed, &probes); err != nil {
			return nil, errors.New("malformed probe JSON: " + err.Error())
		}
	} else {
		p := new(Probe)
		if err := json.Unmarshal(trimmed, p); err != nil {
			return nil, errors.New("malformed probe JSON: " + err.Error())
		}
		probes = []*Probe{p}
	}
	for i, p := range probes {
		if err := validate(p); err != nil {
			if multi {
				return nil, errors.New("probe " + strconv.Itoa(i) + ": " + err.Error())
			}
			return nil, err
		}
	}
	return probes, nil
}

// kind names the handler a probe uses. Like Knative, the first of httpGet,
// tcpSocket, grpc, exec that is set wins.
func (p *Probe) kind() string {
	switch {
	case p.HTTPGet != nil:
		return "httpGet"
	case p.TCPSocket != nil:
		return "tcpSocket"
	case p.GRPC != nil:
		return "grpc"
	case p.Exec != nil:
		return "exec"
	}
	return ""
}

// validate reports why p cannot be run, or nil.
func validate(p *Probe) error {
	if p == nil {
		return errors.New("null probe")
	}
	switch p.kind() {
	case "httpGet":
		h := p.HTTPGet
		if _, err := h.Port.resolve(); err != nil {
			return errors.New("httpGet.port: " + err.Error())
		}
		switch strings.ToUpper(h.Scheme) {
		case "HTTP", "HTTPS":
		case "":
			return errors.New("httpGet.scheme: missing protocol scheme (want HTTP or HTTPS)")
		default:
			return errors.New("httpGet.scheme: unsupported protocol scheme " + strconv.Quote(h.Scheme) + " (want HTTP or HTTPS)")
		}
		for _, hd := range h.HTTPHeaders {
			if !httpguts.ValidHeaderFieldName(hd.Name) {
				return errors.New("httpGet.httpHeaders: invalid header name " + strconv.Quote(hd.Name))
			}
			if !httpguts.ValidHeaderFieldValue(hd.Value) {
				return errors.New("httpGet.httpHeaders: invalid value for header " + strconv.Quote(hd.Name))
			}
		}
		// The URL must parse; the probe is built once, here and at startup.
		if _, err := newHTTPProbe(h, false); err != nil {
			return errors.New("httpGet: " + err.Error())
		}
	case "tcpSocket":
		if _, err := p.TCPSocket.Port.resolve(); err != nil {
			return errors.New("tcpSocket.port: " + err.Error())
		}
	case "grpc":
		if _, err := p.GRPC.Port.resolve(); err != nil {
			return errors.New("grpc.port: " + err.Error())
		}
	case "exec":
		return errors.New("exec probe not supported: the queue-proxy cannot run commands in the user container")
	default:
		return errors.New("no probe found: the probe has no httpGet, tcpSocket or grpc handler")
	}
	return nil
}
