package sharedmain

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The configuration document that PrintConfig prints and /debug/config
// serves: one JSON object, members in this order.
//
//	{
//	  "observabilityGeneration": {"value": "newest", "source": "env:OBSERVABILITY_CONFIG",
//	                              "note": "OBSERVABILITY_CONFIG is set"},
//	  "derived": {                   what the settings add up to (printconfig_derived.go)
//	    "listeners": {"main": {"value": ":8012", "source": "env:QUEUE_SERVING_PORT"}, ...},
//	    "timeouts": {...}, "containerConcurrency": {...}, "upstreamPath": {...},
//	    "readinessProbe": {...}, "tracing": {...}, "requestMetrics": {...},
//	    "requestLog": {...}, "profiling": {...}
//	  },
//	  "env": {                       every variable of the env reference, in its order
//	    "SERVING_NAMESPACE": {"value": "default", "source": "env:SERVING_NAMESPACE"},
//	    "QP_DRAIN_QUIET_PERIOD": {"value": "30s", "source": "default"}, ...
//	  },
//	  "observabilityConfig": {       every OBSERVABILITY_CONFIG field, resolved
//	    "tracing.samplingRate": {"value": 0.1, "source": "OBSERVABILITY_CONFIG:tracing.samplingRate"}, ...
//	  },
//	  "warnings": ["..."]            what startup logs as warnings about the settings
//	}
//
// Every leaf is a setting: its value and its source, which is
// "env:NAME" (the variable is set), "OBSERVABILITY_CONFIG:path" (the field
// is in OBSERVABILITY_CONFIG) or "default"; a note may explain. Durations
// are Go durations ("30s"); a string variable holding JSON is shown as
// JSON. Secrets are redacted (printconfig_redact.go). The document depends
// only on the environment, so the same environment gives the same bytes.

// sourceDefault is the source of a value nobody set.
const sourceDefault = "default"

// setting is one leaf of the document.
type setting struct {
	Value  any    `json:"value"`
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
}

// object is a JSON object whose members keep the order they were added in.
type object []member

type member struct {
	key   string
	value any
}

func (o *object) add(key string, value any) { *o = append(*o, member{key, value}) }

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshalJSON(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshalJSON(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalJSON is json.Marshal without HTML escaping, so that "<redacted>"
// reads as itself.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// envSource is the source of a value the variable name gives when set.
func (d docContext) envSource(name string) string {
	if _, ok := d.c.lookup(name); ok {
		return "env:" + name
	}
	return sourceDefault
}

// firstSource returns the first of sources that is not the default.
func firstSource(sources ...string) string {
	for _, s := range sources {
		if s != sourceDefault {
			return s
		}
	}
	return sourceDefault
}

// startupSource turns how startup names a setting in its log ("NAME",
// "NAME=value", "OBSERVABILITY_CONFIG tracing.endpoint", "default") into a
// source.
func startupSource(s string) string {
	name, _, _ := strings.Cut(s, "=")
	switch {
	case name == "" || name == sourceDefault:
		return sourceDefault
	case strings.HasPrefix(name, "OBSERVABILITY_CONFIG "):
		return "OBSERVABILITY_CONFIG:" + strings.TrimPrefix(name, "OBSERVABILITY_CONFIG ")
	}
	return "env:" + name
}

// docContext builds the document from what checkEnv resolved.
type docContext struct {
	c envCheck
	// present holds the OBSERVABILITY_CONFIG fields the variable sets.
	present map[string]bool
}

// obsSource is the source of an OBSERVABILITY_CONFIG field.
func (d docContext) obsSource(path string) string {
	if d.present[path] {
		return "OBSERVABILITY_CONFIG:" + path
	}
	return sourceDefault
}

// document renders the configuration document, indented, with a final
// newline.
func (c envCheck) document() ([]byte, error) {
	d := docContext{c: c, present: observabilityPresent(c.cfg.ObservabilityConfig)}
	var doc object
	doc.add("observabilityGeneration", d.generation())
	doc.add("derived", d.derived())
	doc.add("env", d.envSettings())
	doc.add("observabilityConfig", d.observabilityFields())
	warnings := []string{}
	for _, w := range c.warnings {
		warnings = append(warnings, redactString(w))
	}
	doc.add("warnings", warnings)

	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// generation is the observability generation chosen and why.
func (d docContext) generation() setting {
	cfg := d.c.cfg
	source := sourceDefault
	switch {
	case cfg.ObservabilityGeneration == generation115 || cfg.ObservabilityGeneration == generationNewest:
		source = "env:QP_OBSERVABILITY_GENERATION"
	case cfg.ObservabilityConfig != "":
		source = "env:OBSERVABILITY_CONFIG"
	}
	return setting{Value: d.c.obs.gen.Name, Source: source, Note: d.c.obs.genReason}
}

// envSettings lists every variable of envSpecs (the README's reference)
// with its value as startup reads it (checkEnv read the structs); the
// variables of a struct that did not parse show their raw text.
func (d docContext) envSettings() object {
	var out object
	seen := map[string]bool{}
	for i, spec := range envSpecs {
		ptr, raw := d.c.specs[i], false
		if ptr == nil {
			ptr, raw = reflect.New(reflect.TypeOf(spec)).Interface(), true
		}
		for _, f := range specFields(ptr) {
			if seen[f.key] {
				continue
			}
			seen[f.key] = true
			v := envValue(f.key, f.value)
			if raw {
				s, _ := d.c.lookup(f.key)
				v = envValue(f.key, reflect.ValueOf(s))
			}
			out.add(f.key, setting{Value: v, Source: d.envSource(f.key)})
		}
	}
	return out
}

type specField struct {
	key   string
	value reflect.Value
}

// specFields lists the variables of the env struct ptr points to with their
// fields, in field order. The names follow envconfig's rule for the
// structs of envSpecs, which are flat and name each variable in an
// envconfig tag (TestSpecFieldsNames checks them against EnvVars, which
// asks envconfig itself; its way, through text/template, would cost the
// binary dead-method elimination).
func specFields(ptr any) []specField {
	v := reflect.ValueOf(ptr).Elem()
	t := v.Type()
	var out []specField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		key := f.Tag.Get("envconfig")
		if key == "" {
			key = f.Name
		}
		out = append(out, specField{strings.ToUpper(key), v.Field(i)})
	}
	return out
}

// envValue is how the document shows the value of the variable name:
// durations as Go durations, JSON text as JSON, everything redacted.
func envValue(name string, v reflect.Value) any {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		switch {
		case s == "":
			return s
		case strings.HasSuffix(name, "HEADERS"):
			return redactHeaderList(s)
		case credentialName(name):
			return redacted
		}
		return jsonOrString(s)
	case reflect.Float32, reflect.Float64:
		return jsonFloat(v.Float())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Interface()
	}
	raw, err := redactedJSON(v.Interface())
	if err != nil {
		return redactString(v.String())
	}
	return raw
}

// jsonOrString shows s as JSON when it holds an object or array, redacted
// either way.
func jsonOrString(s string) any {
	if looksJSON(s) {
		if raw, err := redactJSONText([]byte(s)); err == nil {
			return raw
		}
	}
	return redactString(s)
}

// jsonFloat is f as a JSON number, or as text when JSON has no number for
// it (NaN, infinities: strconv.ParseFloat accepts them).
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// observabilityFields lists every OBSERVABILITY_CONFIG field with its
// resolved value.
func (d docContext) observabilityFields() object {
	values := map[string]reflect.Value{}
	eachJSONLeaf(reflect.ValueOf(d.c.obs.config), "", func(path string, _ reflect.StructField, fv reflect.Value) {
		values[path] = fv
	})
	var out object
	for _, f := range ObservabilityFields() {
		v := values[f.Path]
		var value any
		switch {
		case !v.IsValid():
			continue
		case v.Type() == durationType:
			value = time.Duration(v.Int()).String()
		case v.Kind() == reflect.String:
			value = redactString(v.String())
		case v.Kind() == reflect.Float32 || v.Kind() == reflect.Float64:
			value = jsonFloat(v.Float())
		default:
			value = v.Interface()
		}
		out.add(f.Path, setting{Value: value, Source: d.obsSource(f.Path)})
	}
	return out
}

// observabilityPresent returns the OBSERVABILITY_CONFIG fields that raw
// sets, matching member names as encoding/json does (an exact match first,
// then any case); a null sets nothing.
func observabilityPresent(raw string) map[string]bool {
	present := map[string]bool{}
	var root map[string]any
	if raw == "" || json.Unmarshal([]byte(raw), &root) != nil {
		return present
	}
	for _, f := range ObservabilityFields() {
		var v any = root
		for _, part := range strings.Split(f.Path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = jsonMember(m, part)
		}
		if v != nil {
			present[f.Path] = true
		}
	}
	return present
}

// jsonMember is the member of m that encoding/json would decode into a
// field named name; nil when there is none.
func jsonMember(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}
