// Package config_test checks the manifests under config/: each decodes
// strictly into its Kubernetes (or Prometheus) type, and together they give
// queue-proxy what it needs to start and to work as Knative's reconciler
// would set it up. It is a separate module so that k8s.io/api and
// sigs.k8s.io/yaml never enter the queue-proxy binary's module graph.
package config_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// configDir is the repository's config/ directory.
const configDir = "../../config"

// doc is one YAML document of a manifest file.
type doc struct {
	file  string // path relative to configDir
	index int    // position in the file, from 0
}

func (d doc) String() string { return fmt.Sprintf("%s#%d", d.file, d.index) }

// bundle is every object found under config/, decoded.
type bundle struct {
	deployments map[doc]*appsv1.Deployment
	services    map[doc]*corev1.Service
	configMaps  map[doc]*corev1.ConfigMap
	prometheus  map[doc]*promConfig
}

// readConfigFiles returns the content of every file under config/, by path
// relative to it.
func readConfigFiles() (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(configDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(configDir, path)
		files[filepath.ToSlash(rel)] = string(raw)
		return nil
	})
	return files, err
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeBundle decodes every document of every file strictly: an unknown or
// duplicated field, a kind the test does not know or a file that is not YAML
// is an error, so that no manifest under config/ goes unchecked.
func decodeBundle(files map[string]string) (*bundle, []error) {
	b := &bundle{
		deployments: map[doc]*appsv1.Deployment{},
		services:    map[doc]*corev1.Service{},
		configMaps:  map[doc]*corev1.ConfigMap{},
		prometheus:  map[doc]*promConfig{},
	}
	var errs []error
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if ext := filepath.Ext(name); ext != ".yaml" && ext != ".yml" {
			errs = append(errs, fmt.Errorf("%s: not a .yaml file; test/config checks every file under config/, teach it this one", name))
			continue
		}
		for i, text := range docSeparator.Split(files[name], -1) {
			d := doc{file: name, index: i}
			if strings.TrimSpace(stripComments(text)) == "" {
				continue
			}
			if err := b.decode(d, []byte(text)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", d, err))
			}
		}
	}
	return b, errs
}

func stripComments(text string) string {
	var out bytes.Buffer
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out.WriteString(line + "\n")
		}
	}
	return out.String()
}

// decode picks the type from apiVersion and kind (or, for a Prometheus
// config, from scrape_configs) and decodes the document strictly into it.
func (b *bundle) decode(d doc, raw []byte) error {
	var head struct {
		APIVersion    string `json:"apiVersion"`
		Kind          string `json:"kind"`
		ScrapeConfigs any    `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return err
	}
	strict := func(into any) error { return yaml.UnmarshalStrict(raw, into) }
	switch kind := head.APIVersion + " " + head.Kind; {
	case kind == "apps/v1 Deployment":
		obj := &appsv1.Deployment{}
		b.deployments[d] = obj
		return strict(obj)
	case kind == "v1 Service":
		obj := &corev1.Service{}
		b.services[d] = obj
		return strict(obj)
	case kind == "v1 ConfigMap":
		obj := &corev1.ConfigMap{}
		b.configMaps[d] = obj
		return strict(obj)
	case head.Kind == "" && head.ScrapeConfigs != nil:
		obj := &promConfig{}
		b.prometheus[d] = obj
		return strict(obj)
	default:
		return fmt.Errorf("apiVersion %q kind %q: test/config does not know how to check it; add it to bundle.decode", head.APIVersion, head.Kind)
	}
}
