package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

// Names and numbers fixed by Knative (CONTRACT.md §2, §4.5, §6.2).
const (
	queueContainer   = "queue-proxy"
	probeHeader      = "K-Network-Probe"
	probeHeaderValue = "queue"
	drainPath        = "/wait-for-drain"
	userMetricsPort  = 9091 // unless METRICS_PROMETHEUS_PORT says otherwise
)

// fieldRefs are the variables Knative fills from the pod, and from where.
var fieldRefs = map[string]string{
	"SERVING_POD":    "metadata.name",
	"SERVING_POD_IP": "status.podIP",
	"HOST_IP":        "status.hostIP",
}

// deploymentKeys are the keys Knative's config-deployment understands.
// Knative ignores any other key without a word, so a typo here would
// silently leave Knative's default in place.
var deploymentKeys = map[string]bool{
	"queue-sidecar-image": true, "progress-deadline": true, "digest-resolution-timeout": true,
	"registries-skipping-tag-resolving": true, "queue-sidecar-tokens": true, "queue-sidecar-rootca": true,
	"queue-sidecar-cpu-request": true, "queue-sidecar-cpu-limit": true,
	"queue-sidecar-memory-request": true, "queue-sidecar-memory-limit": true,
	"queue-sidecar-ephemeral-storage-request": true, "queue-sidecar-ephemeral-storage-limit": true,
	"queue-sidecar-tls-min-version": true, "queue-sidecar-tls-max-version": true,
	"queue-sidecar-tls-cipher-suites": true, "queue-sidecar-tls-curve-preferences": true,
}

// resourceKeys maps config-deployment's resource keys to the container's
// resources they become.
var resourceKeys = []struct {
	key     string
	limit   bool
	resName corev1.ResourceName
}{
	{"queue-sidecar-cpu-request", false, corev1.ResourceCPU},
	{"queue-sidecar-cpu-limit", true, corev1.ResourceCPU},
	{"queue-sidecar-memory-request", false, corev1.ResourceMemory},
	{"queue-sidecar-memory-limit", true, corev1.ResourceMemory},
	{"queue-sidecar-ephemeral-storage-request", false, corev1.ResourceEphemeralStorage},
	{"queue-sidecar-ephemeral-storage-limit", true, corev1.ResourceEphemeralStorage},
}

func sortedDocs[T any](m map[doc]T) []doc {
	docs := make([]doc, 0, len(m))
	for d := range m {
		docs = append(docs, d)
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].String() < docs[j].String() })
	return docs
}

// check runs every check on the bundle and returns the problems found.
func (b *bundle) check() []error {
	var errs []error
	add := func(d doc, es ...error) {
		for _, e := range es {
			errs = append(errs, fmt.Errorf("%s: %w", d, e))
		}
	}
	for what, n := range map[string]int{
		"a Deployment running queue-proxy": len(b.deployments),
		"a Service":                        len(b.services),
		"the config-deployment patch":      len(b.configMaps),
		"a Prometheus scrape config":       len(b.prometheus),
	} {
		if n == 0 {
			errs = append(errs, fmt.Errorf("config/ has no %s", what))
		}
	}
	var sidecarImage string
	var sidecarResources *corev1.ConfigMap
	for _, d := range sortedDocs(b.configMaps) {
		cm := b.configMaps[d]
		add(d, checkConfigDeployment(cm)...)
		sidecarImage, sidecarResources = cm.Data["queue-sidecar-image"], cm
	}
	for _, d := range sortedDocs(b.deployments) {
		dep := b.deployments[d]
		add(d, checkDeployment(dep)...)
		qp := findContainer(&dep.Spec.Template.Spec, queueContainer)
		if qp == nil || sidecarResources == nil {
			continue
		}
		if qp.Image != sidecarImage {
			add(d, fmt.Errorf("queue-proxy image %q differs from config-deployment's queue-sidecar-image %q", qp.Image, sidecarImage))
		}
		add(d, sameResources(qp, sidecarResources)...)
	}
	for _, d := range sortedDocs(b.services) {
		add(d, checkService(b.services[d], b.deployments)...)
	}
	for _, d := range sortedDocs(b.prometheus) {
		p := b.prometheus[d]
		add(d, p.validate()...)
		add(d, checkScrape(p, b.deployments)...)
	}
	return errs
}

// checkConfigDeployment checks the patch of Knative's config-deployment.
func checkConfigDeployment(cm *corev1.ConfigMap) []error {
	var errs []error
	if cm.Name != "config-deployment" || cm.Namespace != "knative-serving" {
		errs = append(errs, fmt.Errorf("ConfigMap %s/%s: want knative-serving/config-deployment, the only ConfigMap Knative reads queue-sidecar-image from", cm.Namespace, cm.Name))
	}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !deploymentKeys[k] {
			errs = append(errs, fmt.Errorf("config-deployment key %q is not one Knative reads; it would be ignored silently", k))
		}
	}
	image := cm.Data["queue-sidecar-image"]
	if !imageRefRE.MatchString(image) {
		errs = append(errs, fmt.Errorf("queue-sidecar-image %q is not an image reference (Knative refuses an empty one)", image))
	}
	quantities := map[string]resource.Quantity{}
	for _, rk := range resourceKeys {
		v, ok := cm.Data[rk.key]
		if !ok {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a Kubernetes quantity: %v", rk.key, v, err))
			continue
		}
		quantities[rk.key] = q
	}
	for _, pair := range [][2]string{
		{"queue-sidecar-cpu-request", "queue-sidecar-cpu-limit"},
		{"queue-sidecar-memory-request", "queue-sidecar-memory-limit"},
		{"queue-sidecar-ephemeral-storage-request", "queue-sidecar-ephemeral-storage-limit"},
	} {
		req, okr := quantities[pair[0]]
		lim, okl := quantities[pair[1]]
		if okr && okl && req.Cmp(lim) > 0 {
			errs = append(errs, fmt.Errorf("%s %s is above %s %s: pods would be rejected", pair[0], req.String(), pair[1], lim.String()))
		}
	}
	if _, ok := quantities["queue-sidecar-memory-request"]; !ok {
		errs = append(errs, fmt.Errorf("no queue-sidecar-memory-request: the patch should carry our recommendation"))
	}
	return errs
}

var imageRefRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[a-f0-9]{64})?$`)

// sameResources checks that the example's sidecar asks for what the patch
// recommends.
func sameResources(qp *corev1.Container, cm *corev1.ConfigMap) []error {
	var errs []error
	for _, rk := range resourceKeys {
		list := qp.Resources.Requests
		if rk.limit {
			list = qp.Resources.Limits
		}
		got, has := list[rk.resName]
		v, want := cm.Data[rk.key]
		switch {
		case !want && has:
			errs = append(errs, fmt.Errorf("queue-proxy sets %s %s, which config-deployment does not recommend", rk.key, got.String()))
		case want && !has:
			errs = append(errs, fmt.Errorf("queue-proxy lacks %s %s recommended by config-deployment", rk.key, v))
		case want && has:
			if q, err := resource.ParseQuantity(v); err == nil && q.Cmp(got) != 0 {
				errs = append(errs, fmt.Errorf("queue-proxy %s is %s, config-deployment recommends %s", rk.key, got.String(), v))
			}
		}
	}
	return errs
}

func findContainer(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

func findPort(c *corev1.Container, name string) *corev1.ContainerPort {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return &c.Ports[i]
		}
	}
	return nil
}

// proxyEnv is the queue-proxy container's environment as the proxy would
// see it: literal values, or the value Knative's fieldRef would give (here
// a made-up one), with the documented default for an absent variable.
type proxyEnv struct {
	values  map[string]string // present variables
	order   []string
	defined map[string]sharedmain.EnvVar
}

func newProxyEnv(qp *corev1.Container) (proxyEnv, []error) {
	e := proxyEnv{values: map[string]string{}, defined: map[string]sharedmain.EnvVar{}}
	for _, v := range sharedmain.EnvVars() {
		e.defined[v.Name] = v
	}
	var errs []error
	for _, v := range qp.Env {
		if _, dup := e.values[v.Name]; dup {
			errs = append(errs, fmt.Errorf("queue-proxy env %s is set twice", v.Name))
		}
		e.order = append(e.order, v.Name)
		switch {
		case v.ValueFrom == nil:
			e.values[v.Name] = v.Value
		case v.ValueFrom.FieldRef != nil && fieldRefs[v.Name] != "":
			if got, want := v.ValueFrom.FieldRef.FieldPath, fieldRefs[v.Name]; got != want {
				errs = append(errs, fmt.Errorf("queue-proxy env %s comes from %s; Knative sets it from %s", v.Name, got, want))
			}
			e.values[v.Name] = map[string]string{
				"metadata.name": "hello-00001-deployment-7d9c4b5f6-x2x9z",
				"status.podIP":  "127.0.0.1",
				"status.hostIP": "127.0.0.1",
			}[v.ValueFrom.FieldRef.FieldPath]
		default:
			errs = append(errs, fmt.Errorf("queue-proxy env %s has a valueFrom this test cannot resolve; only %v are fieldRefs in Knative", v.Name, fieldRefs))
			e.values[v.Name] = ""
		}
	}
	return e, errs
}

// get returns a variable's value as the proxy reads it: the set value, else
// its default.
func (e proxyEnv) get(name string) string {
	if v, ok := e.values[name]; ok {
		return v
	}
	return e.defined[name].Default
}

func (e proxyEnv) port(name string) (int, error) {
	n, err := strconv.Atoi(e.get(name))
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%s %q is not a port number: the proxy exits 1", name, e.get(name))
	}
	return n, nil
}

// check checks the variables themselves: all that Knative's reconciler
// sets, nothing queue-proxy would not read (our own QP_* variables are
// fine), every variable the binary requires, values that parse and validate.
func (e proxyEnv) check() []error {
	var errs []error
	knative := map[string]bool{}
	for _, name := range sharedmain.ReconcilerEnv() {
		knative[name] = true
		if _, ok := e.values[name]; !ok {
			errs = append(errs, fmt.Errorf("queue-proxy env lacks %s, which Knative's reconciler sets", name))
		}
	}
	for _, name := range e.order {
		if _, read := e.defined[name]; !read && !knative[name] {
			errs = append(errs, fmt.Errorf("queue-proxy env %s is neither read by queue-proxy nor set by Knative: a misspelling?", name))
		}
	}
	for _, v := range sharedmain.EnvVars() {
		value, ok := e.values[v.Name]
		if !ok {
			if v.Required {
				errs = append(errs, fmt.Errorf("queue-proxy env lacks %s, which the proxy requires: it exits 1", v.Name))
			}
			continue
		}
		if err := v.Check(value); err != nil {
			errs = append(errs, fmt.Errorf("queue-proxy env %v: the proxy exits 1", err))
		}
	}
	for _, name := range []string{"QUEUE_SERVING_PORT", "QUEUE_SERVING_TLS_PORT", "USER_PORT", "QP_ADMIN_PORT", "QP_METRICS_PORT", "PROFILING_PORT"} {
		if _, err := e.port(name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range []string{"REVISION_TIMEOUT_SECONDS", "REVISION_RESPONSE_START_TIMEOUT_SECONDS", "REVISION_IDLE_TIMEOUT_SECONDS"} {
		if n, err := strconv.ParseInt(e.get(name), 0, 64); err == nil && n < 0 {
			errs = append(errs, fmt.Errorf("%s is negative: the proxy exits 1", name))
		}
	}
	if _, err := sharedmain.ParseObservabilityConfig(e.get("OBSERVABILITY_CONFIG")); err != nil {
		errs = append(errs, fmt.Errorf("%v: the proxy exits 1", err))
	}
	if err := checkProbeJSON(e.get("SERVING_READINESS_PROBE"), e.get("ENABLE_MULTI_CONTAINER_PROBES")); err != nil {
		errs = append(errs, fmt.Errorf("SERVING_READINESS_PROBE: %v: the proxy exits 1", err))
	}
	if s := strings.TrimSpace(e.get("SERVING_LOGGING_CONFIG")); s != "" {
		var zapConfig map[string]any
		if err := json.Unmarshal([]byte(s), &zapConfig); err != nil {
			errs = append(errs, fmt.Errorf("SERVING_LOGGING_CONFIG is not a JSON object (%v): the proxy would fall back to its default logging", err))
		}
	}
	return errs
}

// checkProbeJSON decodes SERVING_READINESS_PROBE as the proxy does: one
// probe, or an array with ENABLE_MULTI_CONTAINER_PROBES. Unknown fields are
// errors here, to catch typos the proxy would silently ignore.
func checkProbeJSON(value, multi string) error {
	if value == "" {
		return nil
	}
	strict := func(into any) error {
		d := json.NewDecoder(bytes.NewReader([]byte(value)))
		d.DisallowUnknownFields()
		return d.Decode(into)
	}
	var probes []*corev1.Probe
	if isMulti, _ := strconv.ParseBool(multi); isMulti {
		if err := strict(&probes); err != nil {
			return fmt.Errorf("with ENABLE_MULTI_CONTAINER_PROBES=true it must be a JSON array of probes: %v", err)
		}
	} else {
		var p corev1.Probe
		if err := strict(&p); err != nil {
			return fmt.Errorf("not a probe: %v", err)
		}
		probes = append(probes, &p)
	}
	for i, p := range probes {
		if p == nil || (p.HTTPGet == nil && p.TCPSocket == nil && p.GRPC == nil && p.Exec == nil) {
			return fmt.Errorf("probe %d has no handler", i)
		}
	}
	return nil
}

// checkDeployment checks a pod template running queue-proxy next to a user
// container, against what Knative's reconciler builds.
func checkDeployment(dep *appsv1.Deployment) []error {
	spec := &dep.Spec.Template.Spec
	qp := findContainer(spec, queueContainer)
	if qp == nil {
		return []error{fmt.Errorf("no container named %s", queueContainer)}
	}
	env, errs := newProxyEnv(qp)
	errs = append(errs, env.check()...)
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	servingPort, err1 := env.port("QUEUE_SERVING_PORT")
	tlsPort, err2 := env.port("QUEUE_SERVING_TLS_PORT")
	userPort, err3 := env.port("USER_PORT")
	adminPort, err4 := env.port("QP_ADMIN_PORT")
	metricsPort, err5 := env.port("QP_METRICS_PORT")
	userMetrics, err6 := userMetricsPort, error(nil)
	if env.get("METRICS_PROMETHEUS_PORT") != "" {
		userMetrics, err6 = env.port("METRICS_PROMETHEUS_PORT")
	}
	portsOK := err1 == nil && err2 == nil && err3 == nil && err4 == nil && err5 == nil && err6 == nil

	if len(qp.Command) > 0 || len(qp.Args) > 0 {
		fail("queue-proxy sets command/args %q %q: Knative sets none and runs the image's entrypoint", qp.Command, qp.Args)
	}

	// Container ports: the names Knative declares, on the numbers the proxy listens on.
	if portsOK {
		for _, want := range []struct {
			name string
			port int
		}{
			{"queue-port", servingPort},
			{"https-port", tlsPort},
			{"http-autometric", metricsPort},
			{"http-usermetric", userMetrics},
		} {
			p := findPort(qp, want.name)
			switch {
			case p == nil:
				fail("queue-proxy declares no port %s (%d)", want.name, want.port)
			case int(p.ContainerPort) != want.port:
				fail("queue-proxy port %s is %d, but the proxy listens on %d", want.name, p.ContainerPort, want.port)
			}
		}
	}

	// Every port is in one network namespace: the user containers must not
	// declare the proxy's, and one of them must declare USER_PORT.
	userServes := false
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.Name == queueContainer {
			continue
		}
		for _, p := range c.Ports {
			if int(p.ContainerPort) == userPort {
				userServes = true
			}
			if portsOK {
				for _, taken := range []int{servingPort, tlsPort, adminPort, metricsPort, userMetrics} {
					if int(p.ContainerPort) == taken {
						fail("container %s declares port %d, which queue-proxy listens on", c.Name, taken)
					}
				}
			}
		}
		// Knative gives every user container the drain hook.
		h := c.Lifecycle
		switch {
		case h == nil || h.PreStop == nil || h.PreStop.HTTPGet == nil:
			fail("container %s has no preStop httpGet %s on port %d: it would be killed before the proxy drained", c.Name, drainPath, adminPort)
		default:
			g := h.PreStop.HTTPGet
			if g.Path != drainPath {
				fail("container %s: preStop path %q, want %s", c.Name, g.Path, drainPath)
			}
			if g.Port.Type != intstr.Int || int(g.Port.IntVal) != adminPort {
				fail("container %s: preStop port %s, want %d (QP_ADMIN_PORT; Knative no longer declares it, so use the number)", c.Name, g.Port.String(), adminPort)
			}
			if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
				fail("container %s: preStop scheme %s; the admin port is plain HTTP", c.Name, g.Scheme)
			}
		}
	}
	if err3 == nil && !userServes {
		fail("USER_PORT is %d, but no user container declares that port", userPort)
	}

	// Readiness: kubelet asks the proxy on its serving port, with the header.
	rp := qp.ReadinessProbe
	switch {
	case rp == nil || rp.HTTPGet == nil:
		fail("queue-proxy needs a readinessProbe httpGet on its serving port with %s: %s", probeHeader, probeHeaderValue)
	default:
		g := rp.HTTPGet
		port := -1
		if g.Port.Type == intstr.Int {
			port = int(g.Port.IntVal)
		} else if p := findPort(qp, g.Port.StrVal); p != nil {
			port = int(p.ContainerPort)
		}
		if err1 == nil && port != servingPort {
			fail("queue-proxy readiness probe goes to port %s, not the serving port %d", g.Port.String(), servingPort)
		}
		found := false
		for _, h := range g.HTTPHeaders {
			if strings.EqualFold(h.Name, probeHeader) && h.Value == probeHeaderValue {
				found = true
			}
		}
		if !found {
			fail("queue-proxy readiness probe lacks the header %s: %s; without it the request is proxied to the app", probeHeader, probeHeaderValue)
		}
		if g.Path != "" && g.Path != "/" {
			fail("queue-proxy readiness probe path %q; Knative probes /", g.Path)
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			fail("queue-proxy readiness probe scheme %s; the serving port is plain HTTP", g.Scheme)
		}
		if rp.TCPSocket != nil || rp.Exec != nil || rp.GRPC != nil {
			fail("queue-proxy readiness probe has more than one handler")
		}
	}

	// The grace period must outlast the drain: the quiet period after the
	// last request, then the longest request.
	quiet, qerr := time.ParseDuration(env.get("QP_DRAIN_QUIET_PERIOD"))
	timeout, terr := strconv.Atoi(env.get("REVISION_TIMEOUT_SECONDS"))
	if qerr == nil && terr == nil {
		need := int64(quiet/time.Second) + int64(timeout)
		if g := spec.TerminationGracePeriodSeconds; g == nil || *g < need {
			fail("terminationGracePeriodSeconds must be at least %d (QP_DRAIN_QUIET_PERIOD %v + REVISION_TIMEOUT_SECONDS %d), or kubelet kills the proxy mid-drain", need, quiet, timeout)
		}
	}

	sc := qp.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		fail("queue-proxy securityContext must set runAsNonRoot: true, as Knative does")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		fail("queue-proxy securityContext must set readOnlyRootFilesystem: true, as Knative does")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		fail("queue-proxy securityContext must set allowPrivilegeEscalation: false, as Knative does")
	}
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		fail("queue-proxy securityContext must drop ALL capabilities, as Knative does")
	}
	return errs
}

// checkService checks that a Service selects a queue-proxy pod and sends
// traffic to the proxy's serving port, never around it.
func checkService(svc *corev1.Service, deployments map[doc]*appsv1.Deployment) []error {
	var errs []error
	if len(svc.Spec.Selector) == 0 {
		return []error{fmt.Errorf("Service %s has no selector", svc.Name)}
	}
	matched := false
	for _, d := range sortedDocs(deployments) {
		dep := deployments[d]
		if dep.Namespace != svc.Namespace || !selects(svc.Spec.Selector, dep.Spec.Template.Labels) {
			continue
		}
		matched = true
		qp := findContainer(&dep.Spec.Template.Spec, queueContainer)
		if qp == nil {
			continue
		}
		env, _ := newProxyEnv(qp)
		servingPort, err := env.port("QUEUE_SERVING_PORT")
		if err != nil {
			continue
		}
		for _, p := range svc.Spec.Ports {
			target := int(p.TargetPort.IntVal)
			if p.TargetPort.Type == intstr.String {
				target = -1
				if cp := findPort(qp, p.TargetPort.StrVal); cp != nil {
					target = int(cp.ContainerPort)
				}
			} else if target == 0 {
				target = int(p.Port)
			}
			if target != servingPort {
				errs = append(errs, fmt.Errorf("Service %s port %s targets %s, not queue-proxy's serving port %d: traffic would bypass the proxy", svc.Name, p.Name, p.TargetPort.String(), servingPort))
			}
		}
	}
	if !matched {
		errs = append(errs, fmt.Errorf("Service %s selector %v selects no pod of the Deployments under config/", svc.Name, svc.Spec.Selector))
	}
	return errs
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkScrape runs the scrape config's relabelling on the pods of every
// Deployment: it must keep exactly the queue-proxy's user-metrics port.
func checkScrape(p *promConfig, deployments map[doc]*appsv1.Deployment) []error {
	var errs []error
	for _, sc := range p.ScrapeConfigs {
		for _, d := range sortedDocs(deployments) {
			dep := deployments[d]
			tmpl := dep.Spec.Template
			kept := sc.scraped(podTargets(dep.Namespace, dep.Name+"-7d9c4b5f6-x2x9z", tmpl.Labels, tmpl.Spec))
			want := userMetricsPort
			if qp := findContainer(&tmpl.Spec, queueContainer); qp != nil {
				if p := findPort(qp, "http-usermetric"); p != nil {
					want = int(p.ContainerPort)
				}
			}
			var good int
			for _, t := range kept {
				switch {
				case t["__meta_kubernetes_pod_container_port_number"] == "9090":
					errs = append(errs, fmt.Errorf("job %s scrapes %s port 9090: that is the autoscaler's protobuf Stat, not Prometheus text", sc.JobName, t["__meta_kubernetes_pod_container_name"]))
				case t["__meta_kubernetes_pod_container_name"] == queueContainer &&
					t["__meta_kubernetes_pod_container_port_name"] == "http-usermetric" &&
					strings.HasSuffix(t["__address__"], ":"+strconv.Itoa(want)):
					good++
				default:
					errs = append(errs, fmt.Errorf("job %s also scrapes %s (%s %s)", sc.JobName, t["__address__"], t["__meta_kubernetes_pod_container_name"], t["__meta_kubernetes_pod_container_port_name"]))
				}
			}
			if good != 1 {
				errs = append(errs, fmt.Errorf("job %s keeps %d targets on queue-proxy's http-usermetric port %d in the pods of %s, want 1", sc.JobName, good, want, d))
			}
		}
	}
	return errs
}
