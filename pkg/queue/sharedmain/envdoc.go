package sharedmain

import (
	"encoding"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// EnvVar describes one environment variable queue-proxy reads. EnvVars
// derives it from the env structs in envSpecs, so the operator's reference in
// the README (checked by a test) cannot drift from what the binary reads.
type EnvVar struct {
	Name     string // the variable, exactly as envconfig looks it up
	Type     string // what the value must parse as: string, int, bool, float, duration, ...
	Required bool   // must be present; an empty string counts as present
	Default  string // used when the variable is absent; "" when there is none
	Desc     string // what it does: the field's desc tag

	origin string       // "type.Field", for error messages
	typ    reflect.Type // the field's type, for Check
}

// EnvVars returns every variable queue-proxy reads through envconfig, in the
// order of envSpecs and of the fields in each struct. A name that two structs
// read is listed once, as the first one describes it.
func EnvVars() []EnvVar {
	var out []EnvVar
	seen := map[string]bool{}
	for _, v := range allEnvVars() {
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v)
		}
	}
	return out
}

// allEnvVars is EnvVars without removing duplicates.
func allEnvVars() []EnvVar {
	var out []EnvVar
	for _, spec := range envSpecs {
		out = append(out, specEnvVars(spec)...)
	}
	return out
}

// specEnvVars lists the variables of one env struct. The names come from
// envconfig itself (through its usage template hook), so nested structs,
// split_words and ignored fields are named exactly as Process names them.
func specEnvVars(spec any) []EnvVar {
	t := reflect.TypeOf(spec)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("sharedmain: envSpecs entry %T is not a struct", spec))
	}
	var out []EnvVar
	record := func(key string, field reflect.Value, tags reflect.StructTag, name string) string {
		required, _ := strconv.ParseBool(tags.Get("required"))
		out = append(out, EnvVar{
			Name:     key,
			Type:     typeName(field.Type()),
			Required: required,
			Default:  tags.Get("default"),
			Desc:     tags.Get("desc"),
			origin:   t.Name() + "." + name,
			typ:      field.Type(),
		})
		return ""
	}
	tmpl := template.Must(template.New("envdoc").
		Funcs(template.FuncMap{"record": record}).
		Parse(`{{range .}}{{record .Key .Field .Tags .Name}}{{end}}`))
	if err := envconfig.Usaget("", reflect.New(t).Interface(), io.Discard, tmpl); err != nil {
		panic(fmt.Sprintf("sharedmain: envSpecs entry %s: %v", t, err))
	}
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

// decodes reports whether envconfig parses t with one of its own methods
// (Decode, Set, UnmarshalText or UnmarshalBinary) rather than by kind.
func decodes(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, i := range []reflect.Type{
		reflect.TypeFor[envconfig.Decoder](),
		reflect.TypeFor[envconfig.Setter](),
		reflect.TypeFor[encoding.TextUnmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](),
	} {
		if t.Implements(i) || p.Implements(i) {
			return true
		}
	}
	return false
}

// typeName is the operator's name for what a value of type t must look like.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case decodes(t):
		return t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string"
		}
		return "comma-separated " + typeName(t.Elem()) + " list"
	case reflect.Map:
		return "comma-separated " + typeName(t.Key()) + ":" + typeName(t.Elem()) + " pairs"
	}
	return t.String()
}

// Check reports whether value parses for the variable's type, with the rules
// envconfig applies at startup (base-prefixed ints, strconv.ParseBool, Go
// durations, comma-separated lists). A string always parses. Check knows
// nothing of the extra validation done after parsing (port ranges, negative
// timeouts, JSON payloads).
func (v EnvVar) Check(value string) error {
	if v.typ == nil {
		return nil
	}
	if err := checkValue(v.typ, value); err != nil {
		return fmt.Errorf("%s: %q is not a valid %s: %w", v.Name, value, v.Type, err)
	}
	return nil
}

// checkValue mirrors envconfig's processField on a scratch value.
func checkValue(t reflect.Type, value string) error {
	p := reflect.New(t)
	switch d := p.Interface().(type) {
	case envconfig.Decoder:
		return d.Decode(value)
	case envconfig.Setter:
		return d.Set(value)
	case encoding.TextUnmarshaler:
		return d.UnmarshalText([]byte(value))
	case encoding.BinaryUnmarshaler:
		return d.UnmarshalBinary([]byte(value))
	}
	var err error
	switch t.Kind() {
	case reflect.Pointer:
		return checkValue(t.Elem(), value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == durationType {
			_, err = time.ParseDuration(value)
		} else {
			_, err = strconv.ParseInt(value, 0, t.Bits())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		_, err = strconv.ParseUint(value, 0, t.Bits())
	case reflect.Bool:
		_, err = strconv.ParseBool(value)
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(value, t.Bits())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 || strings.TrimSpace(value) == "" {
			return nil
		}
		for _, item := range strings.Split(value, ",") {
			if err := checkValue(t.Elem(), item); err != nil {
				return err
			}
		}
	case reflect.Map:
		if strings.TrimSpace(value) == "" {
			return nil
		}
		for _, pair := range strings.Split(value, ",") {
			kv := strings.Split(pair, ":")
			if len(kv) != 2 {
				return fmt.Errorf("invalid map item: %q", pair)
			}
			if err := checkValue(t.Key(), kv[0]); err != nil {
				return err
			}
			if err := checkValue(t.Elem(), kv[1]); err != nil {
				return err
			}
		}
	}
	return err
}

// zeroText is how the reference shows the value an optional variable without
// a default leaves its field at.
func zeroText(t reflect.Type) string {
	switch {
	case t == durationType:
		return "0s"
	case decodes(t):
		return "unset"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return zeroText(t.Elem())
	case reflect.String:
		return `""`
	case reflect.Bool:
		return "false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "0"
	}
	return "empty"
}

// reconcilerEnv is every variable Knative's revision reconciler sets on the
// queue-proxy container in the newest generation, in its order
// (CONTRACT.md §1c).
var reconcilerEnv = []string{
	"SERVING_NAMESPACE", "SERVING_SERVICE", "SERVING_CONFIGURATION", "SERVING_REVISION",
	"QUEUE_SERVING_PORT", "QUEUE_SERVING_TLS_PORT", "CONTAINER_CONCURRENCY",
	"REVISION_TIMEOUT_SECONDS", "REVISION_RESPONSE_START_TIMEOUT_SECONDS", "REVISION_IDLE_TIMEOUT_SECONDS",
	"SERVING_POD", "SERVING_POD_IP", "SERVING_LOGGING_CONFIG", "SERVING_LOGGING_LEVEL", "USER_PORT",
	"SYSTEM_NAMESPACE", "SERVING_READINESS_PROBE", "HOST_IP", "ENABLE_HTTP2_AUTO_DETECTION",
	"ENABLE_HTTP_FULL_DUPLEX", "ROOT_CA", "QUEUE_PROXY_TLS_MIN_VERSION", "QUEUE_PROXY_TLS_MAX_VERSION",
	"QUEUE_PROXY_TLS_CIPHER_SUITES", "QUEUE_PROXY_TLS_CURVE_PREFERENCES", "ENABLE_MULTI_CONTAINER_PROBES",
	"OBSERVABILITY_CONFIG",
}

// ignoredReasons says why queue-proxy does not read some of reconcilerEnv.
var ignoredReasons = map[string]string{
	"SYSTEM_NAMESPACE": "Knative's own namespace (knative-serving); the queue-proxy code path never uses it.",
	"HOST_IP":          "The node's IP (fieldRef status.hostIP); a leftover of Knative's removed container freezer.",
	"ROOT_CA":          "A CA bundle for Knative extensions (queue-sidecar-rootca); the core proxy does not use it.",
}

// ReconcilerEnv returns the names of the variables Knative's revision
// reconciler sets on the queue-proxy container (newest generation), in the
// order it sets them. A manifest that wants to look like Knative's sets these.
func ReconcilerEnv() []string {
	return append([]string(nil), reconcilerEnv...)
}

// IgnoredEnvVars returns the variables Knative's reconciler sets that
// queue-proxy accepts and does not read, with the reason in Desc.
func IgnoredEnvVars() []EnvVar {
	read := map[string]bool{}
	for _, v := range EnvVars() {
		read[v.Name] = true
	}
	var out []EnvVar
	for _, name := range reconcilerEnv {
		if read[name] {
			continue
		}
		desc := ignoredReasons[name]
		if desc == "" {
			desc = "Set by Knative; not read by this build."
		}
		out = append(out, EnvVar{Name: name, Type: "string", Desc: desc})
	}
	return out
}

// ObservabilityField describes one field of the OBSERVABILITY_CONFIG JSON.
type ObservabilityField struct {
	Path    string // dotted JSON path, e.g. "tracing.protocol"
	Type    string // JSON type: string, number, bool, or "duration (ns)"
	Default string // the value when the field (or the whole variable) is absent
	Desc    string

	defaultProse bool // Default describes the value instead of spelling it
}

// observabilityDocs describes ObservabilityConfig's fields by JSON path. A
// test fails when a field has no entry here or an entry names no field.
var observabilityDocs = map[string]struct{ desc, def string }{
	"tracing.protocol":              {desc: "Span exporter: none, grpc, http/protobuf (OTLP), stdout, or zipkin (our extension). Anything else: exit 1."},
	"tracing.endpoint":              {desc: "Collector endpoint for grpc and http/protobuf (host:port means https://host:port; OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT beats it); Zipkin v2 spans URL for zipkin."},
	"tracing.samplingRate":          {desc: "Fraction of new traces sampled, 0 to 1 (>= 1: every request, <= 0: none); see Observability: tracing for OTEL_TRACES_SAMPLER(_ARG)."},
	"metrics.protocol":              {desc: "Knative's control-plane metrics; not used by queue-proxy."},
	"metrics.endpoint":              {desc: "Not used by queue-proxy."},
	"metrics.exportInterval":        {desc: "Not used by queue-proxy."},
	"runtime.profiling":             {desc: "enabled serves pprof on PROFILING_PORT; disabled does not."},
	"runtime.exportInterval":        {desc: "Minimum interval between reads of the Go runtime metrics, newest generation; 1.15: refresh of revision_go_* (15000000000 = 15s)."},
	"requestMetrics.protocol":       {desc: "Request metrics: none, prometheus (served on :9091), grpc, http/protobuf."},
	"requestMetrics.endpoint":       {desc: "Collector endpoint for grpc and http/protobuf (host:port means https://host:port); host:port of the listener for prometheus."},
	"requestMetrics.exportInterval": {desc: "Push interval for grpc and http/protobuf; 0: 60s. OTEL_METRIC_EXPORT_INTERVAL beats it."},
	"enableRequestLog":              {desc: "Write one request-log line per request to stdout."},
	"requestLogTemplate":            {desc: "Go text/template for a request-log line.", def: "Knative's JSON line (with traceId)"},
	"enableProbeRequestLog":         {desc: "Log probe requests too."},
}

// ObservabilityFields returns the fields of the OBSERVABILITY_CONFIG JSON,
// derived from ObservabilityConfig's json tags, with their defaults.
func ObservabilityFields() []ObservabilityField {
	var out []ObservabilityField
	eachJSONLeaf(reflect.ValueOf(DefaultObservabilityConfig()), "", func(path string, f reflect.StructField, fv reflect.Value) {
		out = append(out, observabilityField(path, f, fv))
	})
	return out
}

// eachJSONLeaf calls visit with the JSON path ("tracing.samplingRate"),
// field and value of every field of the struct v that is not itself a
// struct, in declaration order, following the json tags as encoding/json
// does (untagged exported fields by name, "-" and unexported ones skipped).
func eachJSONLeaf(v reflect.Value, prefix string, visit func(path string, f reflect.StructField, fv reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Type.Kind() == reflect.Struct {
			eachJSONLeaf(v.Field(i), prefix+name+".", visit)
			continue
		}
		visit(prefix+name, f, v.Field(i))
	}
}

// observabilityField documents one OBSERVABILITY_CONFIG field whose
// default value is fv.
func observabilityField(path string, f reflect.StructField, fv reflect.Value) ObservabilityField {
	doc := observabilityDocs[path]
	field := ObservabilityField{Path: path, Desc: doc.desc}
	switch {
	case f.Type == durationType:
		field.Type = "duration (ns)"
		field.Default = strconv.FormatInt(fv.Int(), 10)
	case f.Type.Kind() == reflect.String:
		field.Type = "string"
		field.Default = fv.String()
		if field.Default == "" {
			field.Default = `""`
		}
	case f.Type.Kind() == reflect.Bool:
		field.Type = "bool"
		field.Default = strconv.FormatBool(fv.Bool())
	case f.Type.Kind() == reflect.Float32 || f.Type.Kind() == reflect.Float64:
		field.Type = "number"
		field.Default = strconv.FormatFloat(fv.Float(), 'g', -1, 64)
	default:
		field.Type = f.Type.String()
		field.Default = fmt.Sprint(fv.Interface())
	}
	if doc.def != "" {
		field.Default, field.defaultProse = doc.def, true
	}
	return field
}

// Markers around the generated part of the README's "Environment" section.
const (
	envDocBegin = "<!-- BEGIN GENERATED env reference: edit the desc tags in pkg/queue/sharedmain, then run `go test ./pkg/queue/sharedmain -run TestEnvDocREADME -update-envdoc` -->"
	envDocEnd   = "<!-- END GENERATED env reference -->"
)

// envReference renders the operator's reference: every variable read, those
// Knative sets that are not read, and the OBSERVABILITY_CONFIG fields. It is
// what the README holds between envDocBegin and envDocEnd.
func envReference() string {
	var b strings.Builder
	cell := func(s string) string {
		s = strings.Join(strings.Fields(s), " ")
		return strings.ReplaceAll(s, "|", `\|`)
	}
	code := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	b.WriteString(envDocBegin + "\n\n")
	b.WriteString("| Variable | Type | Required | Default | Meaning |\n|---|---|---|---|---|\n")
	for _, v := range EnvVars() {
		req, def := "no", v.Default
		switch {
		case v.Required:
			req, def = "yes", ""
		case def == "":
			def = zeroText(v.typ)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", v.Name, cell(v.Type), req, code(def), cell(v.Desc))
	}
	if ignored := IgnoredEnvVars(); len(ignored) > 0 {
		b.WriteString("\nSet by Knative's reconciler, accepted and not read:\n\n")
		b.WriteString("| Variable | Why it is not read |\n|---|---|\n")
		for _, v := range ignored {
			fmt.Fprintf(&b, "| `%s` | %s |\n", v.Name, cell(v.Desc))
		}
	}
	b.WriteString("\n`OBSERVABILITY_CONFIG` fields (JSON; a missing field keeps its default; unknown fields are ignored):\n\n")
	b.WriteString("| Field | Type | Default | Meaning |\n|---|---|---|---|\n")
	for _, f := range ObservabilityFields() {
		def := code(f.Default)
		if f.defaultProse {
			def = cell(f.Default)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Path, f.Type, def, cell(f.Desc))
	}
	b.WriteString("\n" + envDocEnd + "\n")
	return b.String()
}
