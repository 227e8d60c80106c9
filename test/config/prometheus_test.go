package config_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// promConfig is the part of Prometheus' configuration file the example
// uses. It is decoded strictly, so a misspelt or unsupported field fails.
type promConfig struct {
	ScrapeConfigs []promScrapeConfig `json:"scrape_configs"`
}

type promScrapeConfig struct {
	JobName             string          `json:"job_name"`
	ScrapeInterval      string          `json:"scrape_interval,omitempty"`
	ScrapeTimeout       string          `json:"scrape_timeout,omitempty"`
	MetricsPath         string          `json:"metrics_path,omitempty"`
	Scheme              string          `json:"scheme,omitempty"`
	KubernetesSDConfigs []promK8sSD     `json:"kubernetes_sd_configs"`
	RelabelConfigs      []promRelabel   `json:"relabel_configs,omitempty"`
	StaticConfigs       []promStaticCfg `json:"static_configs,omitempty"`
}

type promK8sSD struct {
	Role       string `json:"role"`
	Namespaces *struct {
		Names []string `json:"names"`
	} `json:"namespaces,omitempty"`
}

type promStaticCfg struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

type promRelabel struct {
	SourceLabels []string `json:"source_labels,omitempty"`
	Separator    *string  `json:"separator,omitempty"`
	Regex        *string  `json:"regex,omitempty"`
	TargetLabel  string   `json:"target_label,omitempty"`
	Replacement  *string  `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}

var promDurationRE = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// validate checks what Prometheus would reject when loading the file.
func (c *promConfig) validate() []error {
	var errs []error
	if len(c.ScrapeConfigs) == 0 {
		errs = append(errs, fmt.Errorf("no scrape_configs"))
	}
	for _, sc := range c.ScrapeConfigs {
		if sc.JobName == "" {
			errs = append(errs, fmt.Errorf("a scrape config has no job_name"))
		}
		for _, d := range []string{sc.ScrapeInterval, sc.ScrapeTimeout} {
			if d != "" && !promDurationRE.MatchString(d) {
				errs = append(errs, fmt.Errorf("job %s: %q is not a Prometheus duration", sc.JobName, d))
			}
		}
		if sc.Scheme != "" && sc.Scheme != "http" && sc.Scheme != "https" {
			errs = append(errs, fmt.Errorf("job %s: scheme %q", sc.JobName, sc.Scheme))
		}
		for _, sd := range sc.KubernetesSDConfigs {
			switch sd.Role {
			case "pod", "service", "endpoints", "endpointslice", "node", "ingress":
			default:
				errs = append(errs, fmt.Errorf("job %s: kubernetes_sd_configs role %q", sc.JobName, sd.Role))
			}
		}
		for _, r := range sc.RelabelConfigs {
			if _, err := r.regexp(); err != nil {
				errs = append(errs, fmt.Errorf("job %s: %v", sc.JobName, err))
			}
			switch r.action() {
			case "replace":
				if r.TargetLabel == "" {
					errs = append(errs, fmt.Errorf("job %s: replace without target_label", sc.JobName))
				}
			case "keep", "drop":
				if len(r.SourceLabels) == 0 {
					errs = append(errs, fmt.Errorf("job %s: %s without source_labels", sc.JobName, r.action()))
				}
			default:
				errs = append(errs, fmt.Errorf("job %s: relabel action %q is not simulated by this test; teach promRelabel.apply", sc.JobName, r.Action))
			}
		}
	}
	return errs
}

func (r promRelabel) action() string {
	if r.Action == "" {
		return "replace"
	}
	return strings.ToLower(r.Action)
}

// regexp is the rule's regex, anchored at both ends as Prometheus does.
func (r promRelabel) regexp() (*regexp.Regexp, error) {
	expr := "(.*)"
	if r.Regex != nil {
		expr = *r.Regex
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// apply runs one relabel rule on a target's labels; false means dropped.
func (r promRelabel) apply(labels map[string]string) bool {
	sep := ";"
	if r.Separator != nil {
		sep = *r.Separator
	}
	values := make([]string, len(r.SourceLabels))
	for i, l := range r.SourceLabels {
		values[i] = labels[l]
	}
	value := strings.Join(values, sep)
	re, err := r.regexp()
	if err != nil {
		return false
	}
	switch r.action() {
	case "keep":
		return re.MatchString(value)
	case "drop":
		return !re.MatchString(value)
	case "replace":
		m := re.FindStringSubmatchIndex(value)
		if m == nil {
			return true
		}
		repl := "$1"
		if r.Replacement != nil {
			repl = *r.Replacement
		}
		out := string(re.ExpandString(nil, repl, value, m))
		if out == "" {
			delete(labels, r.TargetLabel)
		} else {
			labels[r.TargetLabel] = out
		}
		return true
	}
	return false
}

var labelNameRE = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// podTargets is what Prometheus' pod role discovers in a running pod built
// from spec: one target per declared container port (and one port-less
// target for a container that declares none).
func podTargets(namespace, podName string, podLabels map[string]string, spec corev1.PodSpec) []map[string]string {
	base := map[string]string{
		"__meta_kubernetes_namespace": namespace,
		"__meta_kubernetes_pod_name":  podName,
		"__meta_kubernetes_pod_phase": "Running",
		"__meta_kubernetes_pod_ip":    "10.0.0.7",
	}
	for k, v := range podLabels {
		base["__meta_kubernetes_pod_label_"+labelNameRE.ReplaceAllString(k, "_")] = v
	}
	var targets []map[string]string
	for _, c := range spec.Containers {
		if len(c.Ports) == 0 {
			t := clone(base)
			t["__meta_kubernetes_pod_container_name"] = c.Name
			t["__address__"] = "10.0.0.7"
			targets = append(targets, t)
		}
		for _, p := range c.Ports {
			t := clone(base)
			t["__meta_kubernetes_pod_container_name"] = c.Name
			t["__meta_kubernetes_pod_container_port_name"] = p.Name
			t["__meta_kubernetes_pod_container_port_number"] = strconv.Itoa(int(p.ContainerPort))
			t["__meta_kubernetes_pod_container_port_protocol"] = string(p.Protocol)
			t["__address__"] = "10.0.0.7:" + strconv.Itoa(int(p.ContainerPort))
			targets = append(targets, t)
		}
	}
	return targets
}

// scraped returns the targets a scrape config keeps, after relabelling.
func (sc promScrapeConfig) scraped(targets []map[string]string) []map[string]string {
	var kept []map[string]string
next:
	for _, t := range targets {
		t = clone(t)
		for _, r := range sc.RelabelConfigs {
			if !r.apply(t) {
				continue next
			}
		}
		kept = append(kept, t)
	}
	return kept
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
