package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func loadBundle(t *testing.T, edit func(map[string]string)) (*bundle, []error) {
	t.Helper()
	files, err := readConfigFiles()
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(files)
	}
	return decodeBundle(files)
}

// TestManifests decodes every manifest under config/ strictly and checks
// them together.
func TestManifests(t *testing.T) {
	b, errs := loadBundle(t, nil)
	for _, err := range errs {
		t.Errorf("decode: %v", err)
	}
	for _, err := range b.check() {
		t.Error(err)
	}
	t.Logf("checked %d Deployment(s), %d Service(s), %d ConfigMap(s), %d Prometheus config(s)",
		len(b.deployments), len(b.services), len(b.configMaps), len(b.prometheus))
}

// TestManifestsAllowOurExtensions: a copy of the example may set our own
// QP_* variables on top of Knative's.
func TestManifestsAllowOurExtensions(t *testing.T) {
	b, errs := loadBundle(t, nil)
	b.setEnv("QP_DRAIN_QUIET_PERIOD", "5s")
	b.setEnv("QP_HIJACK_DRAIN_TIMEOUT", "10s")
	for _, err := range append(errs, b.check()...) {
		t.Error(err)
	}
}

// TestManifestsStartTheProxy runs the real queue-proxy binary with each
// Deployment's queue-proxy environment, as kubelet would start it, and
// requires it to come up and answer on its serving and admin ports.
func TestManifestsStartTheProxy(t *testing.T) {
	b, errs := loadBundle(t, nil)
	if len(errs) > 0 {
		t.Fatalf("decode: %v", errs)
	}
	for _, d := range sortedDocs(b.deployments) {
		t.Run(d.String(), func(t *testing.T) {
			r := runProxy(t, b.deployments[d])
			if !r.serving {
				t.Fatalf("queue-proxy did not come up: %s\nstderr:\n%s", r.outcome, r.stderr)
			}
		})
	}
}

// The manifests' objects the broken cases edit.
func (b *bundle) deployment() *appsv1.Deployment {
	return b.deployments[doc{file: "standalone/deployment.yaml"}]
}

func (b *bundle) configDeployment() *corev1.ConfigMap {
	return b.configMaps[doc{file: "knative/config-deployment-patch.yaml"}]
}

func (b *bundle) service() *corev1.Service { return b.services[doc{file: "standalone/service.yaml"}] }

func (b *bundle) scrape() *promScrapeConfig {
	return &b.prometheus[doc{file: "prometheus/scrape-config.yaml"}].ScrapeConfigs[0]
}

func (b *bundle) qp() *corev1.Container {
	return findContainer(&b.deployment().Spec.Template.Spec, queueContainer)
}

func (b *bundle) user() *corev1.Container {
	return findContainer(&b.deployment().Spec.Template.Spec, "user-container")
}

func (b *bundle) setEnv(name, value string) {
	qp := b.qp()
	for i := range qp.Env {
		if qp.Env[i].Name == name {
			qp.Env[i].Value, qp.Env[i].ValueFrom = value, nil
			return
		}
	}
	qp.Env = append(qp.Env, corev1.EnvVar{Name: name, Value: value})
}

func (b *bundle) dropEnv(name string) {
	qp := b.qp()
	for i := range qp.Env {
		if qp.Env[i].Name == name {
			qp.Env = append(qp.Env[:i], qp.Env[i+1:]...)
			return
		}
	}
}

func replaceIn(file, old, new string) func(map[string]string) {
	return func(files map[string]string) {
		if !strings.Contains(files[file], old) {
			panic(fmt.Sprintf("%s does not contain %q; update the test case", file, old))
		}
		files[file] = strings.Replace(files[file], old, new, 1)
	}
}

// TestBrokenManifests breaks copies of the manifests in the ways that would
// stop the proxy from starting or from working as Knative's, and requires
// the checks to say so. Where the proxy itself would refuse to start, it is
// also run, to prove the check and the binary agree.
func TestBrokenManifests(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  func(map[string]string) // edits the files before decoding
		edit  func(*bundle)           // edits the decoded objects
		want  string                  // in one of the errors
		exits string                  // if set, the proxy must exit 1 naming it on stderr
	}{
		// Decoding is strict.
		{name: "misspelt Deployment field", yaml: replaceIn("standalone/deployment.yaml", "readinessProbe:", "readinesProbe:"), want: "unknown field"},
		{name: "misspelt ConfigMap field", yaml: replaceIn("knative/config-deployment-patch.yaml", "data:", "datas:"), want: "unknown field"},
		{name: "misspelt Prometheus field", yaml: replaceIn("prometheus/scrape-config.yaml", "relabel_configs:", "relabel_config:"), want: "unknown field"},
		{name: "duplicated key", yaml: replaceIn("standalone/service.yaml", "  selector:", "  type: ClusterIP\n  type: NodePort\n  selector:"), want: `key "type" already set`},
		{name: "a kind nobody checks", yaml: func(f map[string]string) { f["extra.yaml"] = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n" }, want: "does not know"},
		{name: "a file that is not YAML", yaml: func(f map[string]string) { f["notes.txt"] = "hello" }, want: "not a .yaml file"},

		// The environment: what the proxy requires and parses at startup.
		{name: "required variable missing", edit: func(b *bundle) { b.dropEnv("SERVING_REVISION") }, want: "lacks SERVING_REVISION", exits: "SERVING_REVISION"},
		{name: "int not a number", edit: func(b *bundle) { b.setEnv("CONTAINER_CONCURRENCY", "ten") }, want: "CONTAINER_CONCURRENCY", exits: "CONTAINER_CONCURRENCY"},
		{name: "bool empty", edit: func(b *bundle) { b.setEnv("ENABLE_HTTP_FULL_DUPLEX", "") }, want: "ENABLE_HTTP_FULL_DUPLEX", exits: "ENABLE_HTTP_FULL_DUPLEX"},
		{name: "port not a number", edit: func(b *bundle) { b.setEnv("QUEUE_SERVING_PORT", "http") }, want: "QUEUE_SERVING_PORT", exits: "QUEUE_SERVING_PORT"},
		{name: "negative timeout", edit: func(b *bundle) { b.setEnv("REVISION_TIMEOUT_SECONDS", "-1") }, want: "REVISION_TIMEOUT_SECONDS is negative", exits: "REVISION_TIMEOUT_SECONDS"},
		{name: "OBSERVABILITY_CONFIG malformed", edit: func(b *bundle) { b.setEnv("OBSERVABILITY_CONFIG", `{"tracing":`) }, want: "OBSERVABILITY_CONFIG", exits: "OBSERVABILITY_CONFIG"},
		{name: "readiness probe JSON malformed", edit: func(b *bundle) { b.setEnv("SERVING_READINESS_PROBE", `{"tcpSocket":`) }, want: "SERVING_READINESS_PROBE"},
		{name: "readiness probe field misspelt", edit: func(b *bundle) { b.setEnv("SERVING_READINESS_PROBE", `{"tcpSockets":{"port":8080}}`) }, want: "SERVING_READINESS_PROBE"},
		{name: "multi-container probes without an array", edit: func(b *bundle) { b.setEnv("ENABLE_MULTI_CONTAINER_PROBES", "true") }, want: "JSON array"},
		{name: "logging config not JSON", edit: func(b *bundle) { b.setEnv("SERVING_LOGGING_CONFIG", "level: info") }, want: "SERVING_LOGGING_CONFIG"},
		{name: "a Knative variable missing", edit: func(b *bundle) { b.dropEnv("ENABLE_MULTI_CONTAINER_PROBES") }, want: "lacks ENABLE_MULTI_CONTAINER_PROBES, which Knative"},
		{name: "misspelt variable", edit: func(b *bundle) { b.setEnv("CONTAINER_CONCURENCY", "10") }, want: "CONTAINER_CONCURENCY is neither read"},
		{name: "SERVING_POD from the wrong field", edit: func(b *bundle) { b.qp().Env[10].ValueFrom.FieldRef.FieldPath = "status.hostIP" }, want: "SERVING_POD comes from status.hostIP"},
		{name: "a value from a ConfigMap", edit: func(b *bundle) {
			b.qp().Env[0].ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "ns"}}
		}, want: "cannot resolve"},

		// Ports, probe, drain hook, lifecycle.
		{name: "queue-port disagrees with QUEUE_SERVING_PORT", edit: func(b *bundle) { findPort(b.qp(), "queue-port").ContainerPort = 8013 }, want: "port queue-port is 8013"},
		{name: "user metrics port moved but not its declaration", edit: func(b *bundle) { b.setEnv("METRICS_PROMETHEUS_PORT", "9191") }, want: "port http-usermetric is 9091, but the proxy listens on 9191"},
		{name: "user metrics port not declared", edit: func(b *bundle) { b.qp().Ports = b.qp().Ports[:3] }, want: "no port http-usermetric"},
		{name: "USER_PORT is not the app's port", edit: func(b *bundle) { b.setEnv("USER_PORT", "8081") }, want: "no user container declares"},
		{name: "app declares a proxy port", edit: func(b *bundle) {
			b.user().Ports = append(b.user().Ports, corev1.ContainerPort{Name: "debug", ContainerPort: 9090})
		}, want: "declares port 9090"},
		{name: "no readiness probe", edit: func(b *bundle) { b.qp().ReadinessProbe = nil }, want: "needs a readinessProbe"},
		{name: "readiness probe without the header", edit: func(b *bundle) { b.qp().ReadinessProbe.HTTPGet.HTTPHeaders = nil }, want: "lacks the header K-Network-Probe"},
		{name: "readiness probe on the admin port", edit: func(b *bundle) { b.qp().ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8022) }, want: "not the serving port"},
		{name: "readiness probe by TCP", edit: func(b *bundle) {
			b.qp().ReadinessProbe.HTTPGet = nil
			b.qp().ReadinessProbe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(8012)}
		}, want: "needs a readinessProbe httpGet"},
		{name: "no preStop hook", edit: func(b *bundle) { b.user().Lifecycle = nil }, want: "no preStop"},
		{name: "preStop on the wrong path", edit: func(b *bundle) { b.user().Lifecycle.PreStop.HTTPGet.Path = "/drain" }, want: "want /wait-for-drain"},
		{name: "preStop on the serving port", edit: func(b *bundle) { b.user().Lifecycle.PreStop.HTTPGet.Port = intstr.FromInt32(8012) }, want: "want 8022"},
		{name: "grace period shorter than the drain", edit: func(b *bundle) {
			g := int64(300)
			b.deployment().Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, want: "at least 330"},
		{name: "longer quiet period than the grace period allows", edit: func(b *bundle) { b.setEnv("QP_DRAIN_QUIET_PERIOD", "60s") }, want: "at least 360"},
		{name: "command overrides the entrypoint", edit: func(b *bundle) { b.qp().Command = []string{"/bin/sh"} }, want: "runs the image's entrypoint"},
		{name: "root allowed", edit: func(b *bundle) { f := false; b.qp().SecurityContext.RunAsNonRoot = &f }, want: "runAsNonRoot"},
		{name: "writable root filesystem", edit: func(b *bundle) { b.qp().SecurityContext.ReadOnlyRootFilesystem = nil }, want: "readOnlyRootFilesystem"},

		// The Service.
		{name: "Service targets the app", edit: func(b *bundle) { b.service().Spec.Ports[0].TargetPort = intstr.FromInt32(8080) }, want: "bypass the proxy"},
		{name: "Service selects nothing", edit: func(b *bundle) { b.service().Spec.Selector = map[string]string{"app": "other"} }, want: "selects no pod"},

		// The config-deployment patch, and the example agreeing with it.
		{name: "misspelt config-deployment key", edit: func(b *bundle) { b.configDeployment().Data["queue-sidecar-memory-requests"] = "32Mi" }, want: "ignored silently"},
		{name: "malformed quantity", edit: func(b *bundle) { b.configDeployment().Data["queue-sidecar-memory-request"] = "32 MiB" }, want: "not a Kubernetes quantity"},
		{name: "memory request above limit", edit: func(b *bundle) { b.configDeployment().Data["queue-sidecar-memory-request"] = "512Mi" }, want: "above queue-sidecar-memory-limit"},
		{name: "empty image", edit: func(b *bundle) { b.configDeployment().Data["queue-sidecar-image"] = "" }, want: "not an image reference"},
		{name: "example runs another image", edit: func(b *bundle) { b.qp().Image = "gcr.io/knative-releases/queue:v1" }, want: "differs from config-deployment"},
		{name: "example's resources differ from the recommendation", edit: func(b *bundle) { delete(b.qp().Resources.Limits, corev1.ResourceMemory) }, want: "lacks queue-sidecar-memory-limit"},

		// The Prometheus scrape config.
		{name: "scrapes the autoscaler port", edit: func(b *bundle) {
			re := "queue-proxy;http-(user|auto)metric"
			b.scrape().RelabelConfigs[0].Regex = &re
		}, want: "port 9090"},
		{name: "scrapes nothing", edit: func(b *bundle) {
			re := "queue-proxy;metrics"
			b.scrape().RelabelConfigs[0].Regex = &re
		}, want: "keeps 0 targets"},
		{name: "unsupported relabel action", edit: func(b *bundle) { b.scrape().RelabelConfigs[2].Action = "hashmod" }, want: "not simulated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, errs := loadBundle(t, tc.yaml)
			if tc.edit != nil {
				tc.edit(b)
			}
			errs = append(errs, b.check()...)
			if len(errs) == 0 {
				t.Fatal("the broken copy passed every check")
			}
			var all []string
			for _, err := range errs {
				all = append(all, err.Error())
			}
			if text := strings.Join(all, "\n"); !strings.Contains(text, tc.want) {
				t.Errorf("no error mentions %q; got:\n%s", tc.want, text)
			}
			if tc.exits == "" {
				return
			}
			r := runProxy(t, b.deployment())
			if !r.exited || r.code != 1 || !strings.Contains(r.stderr, tc.exits) {
				t.Errorf("the proxy should exit 1 naming %s; it %s\nstderr:\n%s", tc.exits, r.outcome, r.stderr)
			}
		})
	}
}

var (
	buildOnce sync.Once
	proxyBin  string
	buildErr  error
)

// proxyBinary builds cmd/queue-proxy once, as `make build` does.
func proxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "queue-proxy-config-test-")
		if err != nil {
			buildErr = err
			return
		}
		proxyBin = filepath.Join(dir, "queue-proxy")
		cmd := exec.Command("go", "build", "-trimpath", "-o", proxyBin, "./cmd/queue-proxy")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/queue-proxy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return proxyBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if proxyBin != "" {
		os.RemoveAll(filepath.Dir(proxyBin))
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

type runResult struct {
	serving bool   // answered the manifest's readiness probe with 200 "queue"
	exited  bool   // exited by itself
	code    int    // exit status, when exited
	outcome string // what happened, for messages
	stderr  string
}

// runProxy starts the proxy with only the Deployment's queue-proxy
// environment (fieldRefs resolved to made-up pod values), as the container
// would see it, next to a stand-in user container. To run anywhere, listener
// ports that hold valid numbers move to free ones (USER_PORT, and the port
// in SERVING_READINESS_PROBE, to the stand-in's); invalid values are left as
// they are, so the proxy sees the breakage. It then sends what kubelet would
// send for the container's readinessProbe, until the proxy answers 200
// "queue", exits, or 15s pass.
func runProxy(t *testing.T, dep *appsv1.Deployment) runResult {
	t.Helper()
	bin := proxyBinary(t)
	qp := findContainer(&dep.Spec.Template.Spec, queueContainer)
	env, _ := newProxyEnv(qp)
	vars := map[string]string{}
	for k, v := range env.values {
		vars[k] = v
	}
	moved := map[string]string{} // old port -> new port
	for _, name := range []string{"QUEUE_SERVING_PORT", "QUEUE_SERVING_TLS_PORT", "QP_ADMIN_PORT", "QP_METRICS_PORT", "PROFILING_PORT", "METRICS_PROMETHEUS_PORT"} {
		if _, err := strconv.Atoi(env.get(name)); err == nil || env.get(name) == "" {
			vars[name] = freePort(t)
			moved[env.get(name)] = vars[name]
		}
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	if old := env.get("USER_PORT"); old != "" {
		if _, err := strconv.Atoi(old); err == nil {
			vars["USER_PORT"] = strconv.Itoa(app.Listener.Addr().(*net.TCPAddr).Port)
			vars["SERVING_READINESS_PROBE"] = moveProbePort(env.get("SERVING_READINESS_PROBE"), old, vars["USER_PORT"])
		}
	}
	vars["QP_CERT_DIR"] = t.TempDir() // no certificate: no TLS listener, wherever the test runs

	cmd := exec.Command(bin)
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var output bytes.Buffer
	cmd.Stderr = &output
	cmd.Stdout = &output // the manifest's zap config logs to stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	result := func(r runResult) runResult {
		r.stderr = output.String()
		if len(r.stderr) > 4000 {
			r.stderr = "..." + r.stderr[len(r.stderr)-4000:]
		}
		return r
	}
	probe := kubeletProbe(qp, moved)
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			r := runResult{exited: true, outcome: "exited with status 0"}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				r.code = ee.ExitCode()
				r.outcome = "exited with status " + strconv.Itoa(r.code)
			} else if err != nil {
				r.code, r.outcome = -1, "failed: "+err.Error()
			}
			return result(r)
		case <-time.After(50 * time.Millisecond):
		}
		if probe == nil {
			last = "the container has no httpGet readinessProbe to send"
			continue
		}
		status, body, err := send(client, probe)
		switch {
		case err != nil:
			last = err.Error()
		case status == http.StatusOK && body == "queue":
			cmd.Process.Kill()
			<-done
			return result(runResult{serving: true, outcome: "came up"})
		default:
			last = fmt.Sprintf("readiness probe answered %d %q", status, body)
		}
	}
	cmd.Process.Kill()
	<-done
	return result(runResult{outcome: "neither became ready nor exited within 15s; last: " + last})
}

// moveProbePort points the probe(s) in SERVING_READINESS_PROBE that target
// port old at port new. A value that does not decode is returned as is.
func moveProbePort(value, old, new string) string {
	var v any
	if json.Unmarshal([]byte(value), &v) != nil {
		return value
	}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, child := range x {
				if k == "port" && fmt.Sprint(child) == old {
					n, _ := strconv.Atoi(new)
					x[k] = n
					continue
				}
				walk(child)
			}
		case []any:
			for _, child := range x {
				walk(child)
			}
		}
	}
	walk(v)
	out, _ := json.Marshal(v)
	return string(out)
}

// kubeletProbe is the request kubelet sends for the container's httpGet
// readiness probe, with the ports moved as the run moved them.
func kubeletProbe(c *corev1.Container, moved map[string]string) *http.Request {
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		return nil
	}
	g := c.ReadinessProbe.HTTPGet
	port := g.Port.String()
	if g.Port.Type == intstr.String {
		if p := findPort(c, g.Port.StrVal); p != nil {
			port = strconv.Itoa(int(p.ContainerPort))
		}
	}
	if m, ok := moved[port]; ok {
		port = m
	}
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/"+strings.TrimPrefix(g.Path, "/"), nil)
	if err != nil {
		return nil
	}
	req.Header.Set("User-Agent", "kube-probe/1.31")
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	return req
}

func send(client *http.Client, req *http.Request) (int, string, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return resp.StatusCode, string(body), err
}
