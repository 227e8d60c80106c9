package e2e

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
	"google.golang.org/protobuf/encoding/protowire"
)

// TestProbes checks how the main port answers kubelet, the activator, the
// autoscaler and network probers (CONTRACT.md §3.9), and the fixed paths of
// the admin and metrics ports (§2).
func TestProbes(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackConfig{})

	tests := []struct {
		name     string
		method   string
		path     string
		header   map[string]string
		wantCode int
		wantBody string
		wantHdr  map[string]string
	}{
		{
			name: "activator", header: map[string]string{"User-Agent": activatorUA, "K-Network-Probe": "queue"},
			wantCode: 200, wantBody: "queue", wantHdr: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		},
		{
			name: "kubelet", header: map[string]string{"User-Agent": kubeletUA, "K-Network-Probe": "queue"},
			wantCode: 200, wantBody: "queue",
		},
		{
			name: "autoscaler", header: map[string]string{"User-Agent": autoscalingUA, "K-Network-Probe": "queue"},
			wantCode: 200, wantBody: "queue",
		},
		{
			name: "any path and method", method: http.MethodPost, path: "/some/where?x=1",
			header:   map[string]string{"User-Agent": activatorUA, "K-Network-Probe": "queue"},
			wantCode: 200, wantBody: "queue",
		},
		{
			name: "kubelet without header", header: map[string]string{"User-Agent": kubeletUA},
			wantCode: 400, wantBody: "unexpected probe header value: \n",
			wantHdr: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
		},
		{
			name: "activator with a wrong header", header: map[string]string{"User-Agent": activatorUA, "K-Network-Probe": "other"},
			wantCode: 400, wantBody: "unexpected probe header value: other\n",
		},
		{
			name: "network probe", header: map[string]string{"K-Network-Probe": "probe", "K-Network-Hash": "h4sh"},
			wantCode: 200, wantBody: "", wantHdr: map[string]string{"K-Network-Hash": "h4sh"},
		},
		{
			name: "network probe without hash", header: map[string]string{"K-Network-Probe": "probe"},
			wantCode: 400, wantBody: `a probe request must contain a non-empty "K-Network-Hash" header` + "\n",
		},
		{
			// Only the User-Agent makes a health check; this one reaches the app.
			name: "queue header without a probe User-Agent", path: "/status?code=203",
			header:   map[string]string{"K-Network-Probe": "queue"},
			wantCode: 203, wantBody: "status 203\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			path := tc.path
			if path == "" {
				path = "/"
			}
			req := newRequest(method, s.url(path), nil)
			req.Header.Set("User-Agent", "")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			r := mustFetch(t, s.c, req)
			if r.code != tc.wantCode || r.body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", r.code, r.body, tc.wantCode, tc.wantBody)
			}
			for k, v := range tc.wantHdr {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("admin port serves only /wait-for-drain", func(t *testing.T) {
		if r := mustFetch(t, s.c, get(s.adminURL("/other"))); r.code != http.StatusNotFound {
			t.Errorf("GET admin /other = %d %q, want 404", r.code, r.body)
		}
	})
	t.Run("metrics port serves only /metrics", func(t *testing.T) {
		if r := mustFetch(t, s.c, get(s.metricsURL("/other"))); r.code != http.StatusNotFound {
			t.Errorf("GET metrics /other = %d %q, want 404", r.code, r.body)
		}
	})
}

// TestAutoscalerStats scrapes :9090/metrics as the autoscaler does and
// decodes the protobuf Stat (CONTRACT.md §5.1).
func TestAutoscalerStats(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackConfig{})

	scrape := func() (stat, error) {
		req := get(s.metricsURL("/metrics"))
		req.Header.Set("Accept", "text/plain") // ignored: always protobuf
		r, err := fetch(s.c, req)
		if err != nil {
			return stat{}, err
		}
		if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/protobuf" {
			return stat{}, fmt.Errorf("scrape: %d, Content-Type %q", r.code, r.header.Get("Content-Type"))
		}
		st, err := decodeStat([]byte(r.body))
		if err != nil {
			t.Fatalf("decoding the Stat %x: %v", r.body, err)
		}
		return st, nil
	}

	st, err := scrape()
	if err != nil {
		t.Fatal(err)
	}
	if st.podName != podName {
		t.Errorf("pod_name = %q, want %q", st.podName, podName)
	}

	// Requests from the activator count as proxied too. Keep sending until a
	// one-second window has seen some.
	var last stat
	eventually(t, 20*time.Second, 100*time.Millisecond, "request counts in the Stat", func() (bool, string) {
		req := get(s.url("/"))
		req.Header.Set("K-Proxy-Request", "activator")
		if r, err := fetch(s.c, req); err != nil || r.code != http.StatusOK {
			return false, fmt.Sprintf("request failed: %v %d", err, r.code)
		}
		st, err := scrape()
		if err != nil {
			return false, err.Error()
		}
		last = st
		return st.requestCount > 0 && st.proxiedRequestCount > 0 && st.processUptime > 0 &&
				st.averageConcurrentRequests > 0 && st.averageProxiedConcurrentRequests > 0,
			fmt.Sprintf("%+v", st)
	})
	if last.podName != podName {
		t.Errorf("pod_name = %q, want %q", last.podName, podName)
	}
	if last.proxiedRequestCount > last.requestCount {
		t.Errorf("proxied_request_count %v > request_count %v", last.proxiedRequestCount, last.requestCount)
	}
	if last.timestampSet {
		t.Error("timestamp (field 7) is set; Knative never sets it")
	}
}

// stat is the autoscaler's Stat message.
type stat struct {
	podName                          string
	averageConcurrentRequests        float64
	averageProxiedConcurrentRequests float64
	requestCount                     float64
	proxiedRequestCount              float64
	processUptime                    float64
	timestampSet                     bool
}

// decodeStat parses the protobuf Stat strictly, as the autoscaler's
// generated code would: pod_name = 1 (string); the doubles 2-6 in
// declaration order; timestamp = 7 (int64, varint). A known field with the
// wrong wire type, or an unknown field, is an error.
func decodeStat(b []byte) (stat, error) {
	var s stat
	doubles := map[protowire.Number]*float64{
		2: &s.averageConcurrentRequests,
		3: &s.averageProxiedConcurrentRequests,
		4: &s.requestCount,
		5: &s.proxiedRequestCount,
		6: &s.processUptime,
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			s.podName, b = string(v), b[n:]
		case doubles[num] != nil && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			*doubles[num], b = math.Float64frombits(v), b[n:]
		case num == 7 && typ == protowire.VarintType:
			_, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return s, protowire.ParseError(n)
			}
			s.timestampSet, b = true, b[n:]
		default:
			return s, fmt.Errorf("Stat field %d with wire type %d: not in the autoscaler's schema", num, typ)
		}
	}
	return s, nil
}

// TestBadEnvironment: a missing or malformed variable makes queue-proxy exit
// 1 at startup, naming the variable on stderr (CONTRACT.md §1).
func TestBadEnvironment(t *testing.T) {
	t.Parallel()
	const unset = "\x00unset"
	tests := []struct {
		name, variable, value string
	}{
		{"required missing", "SERVING_NAMESPACE", unset},
		{"required int missing", "CONTAINER_CONCURRENCY", unset},
		{"int not a number", "CONTAINER_CONCURRENCY", "ten"},
		{"int empty", "REVISION_TIMEOUT_SECONDS", ""},
		{"bool empty", "ENABLE_HTTP_FULL_DUPLEX", ""},
		{"port not a number", "USER_PORT", "http"},
		{"malformed observability config", "OBSERVABILITY_CONFIG", "{"},
		{"zero drain quiet period", "QP_DRAIN_QUIET_PERIOD", "0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p harness.Ports
			p.User = harness.FreePort(t)
			p.PickQueueProxy(t)
			env := knativeEnv(p)
			if tc.value == unset {
				delete(env, tc.variable)
			} else {
				env[tc.variable] = tc.value
			}
			qp := harness.Start(t, "queue-proxy", bins.QueueProxy, nil, harness.ChildEnv(env))
			if code := qp.WaitExit(t, harness.StartupTimeout); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if stderr := qp.Stderr(); !strings.Contains(stderr, tc.variable) {
				t.Errorf("stderr does not name %s:\n%s", tc.variable, stderr)
			}
		})
	}

	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var p harness.Ports
		p.User = harness.FreePort(t)
		p.PickQueueProxy(t)
		env := knativeEnv(p)
		env["QP_ADMIN_PORT"] = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		qp := harness.Start(t, "queue-proxy", bins.QueueProxy, nil, harness.ChildEnv(env))
		if code := qp.WaitExit(t, harness.StartupTimeout); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		if stderr := qp.Stderr(); !strings.Contains(stderr, "address already in use") {
			t.Errorf("stderr does not report the busy port:\n%s", stderr)
		}
	})
}
