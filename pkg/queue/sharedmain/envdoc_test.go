package sharedmain

import (
	"errors"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

var updateEnvDoc = flag.Bool("update-envdoc", false, "rewrite the env reference in README.md from the env structs")

const readmePath = "../../../README.md"

// TestEnvDocREADME fails when the README's env reference differs from what
// the env structs say. With -update-envdoc it rewrites the README instead.
func TestEnvDocREADME(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	begin := strings.Index(readme, envDocBegin)
	end := strings.Index(readme, envDocEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no generated env reference: its Environment section needs the lines\n%s\n%s", envDocBegin, envDocEnd)
	}
	end += len(envDocEnd)
	if end < len(readme) && readme[end] == '\n' {
		end++
	}
	want := envReference()
	if readme[begin:end] == want {
		return
	}
	if *updateEnvDoc {
		if err := os.WriteFile(readmePath, []byte(readme[:begin]+want+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md: env reference rewritten")
		return
	}
	t.Errorf("README.md's env reference is out of date with the env structs.\n"+
		"Regenerate it with\n\n\tgo test ./pkg/queue/sharedmain -run TestEnvDocREADME -update-envdoc\n\n"+
		"or replace the generated part of README.md with:\n\n%s", want)
}

var envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// TestEnvDocVars checks what the reference is made of: every variable is
// described, its default would parse, and two structs reading the same
// variable agree about it.
func TestEnvDocVars(t *testing.T) {
	vars := EnvVars()
	if len(vars) == 0 {
		t.Fatal("EnvVars is empty")
	}
	for _, v := range vars {
		if !envNameRE.MatchString(v.Name) {
			t.Errorf("%s (%s): not an UPPER_SNAKE variable name", v.Name, v.origin)
		}
		if strings.TrimSpace(v.Desc) == "" {
			t.Errorf("%s (%s) has no desc tag: add desc:\"...\" saying what it does; it becomes the README's Meaning", v.Name, v.origin)
		}
		if v.Required && v.Default != "" {
			t.Errorf("%s (%s) is required and has a default; envconfig never reports it missing", v.Name, v.origin)
		}
		if v.Default != "" {
			if err := v.Check(v.Default); err != nil {
				t.Errorf("%s (%s): the default does not parse: %v", v.Name, v.origin, err)
			}
		}
	}
	first := map[string]EnvVar{}
	for _, v := range allEnvVars() {
		f, dup := first[v.Name]
		if !dup {
			first[v.Name] = v
			continue
		}
		if f.Type != v.Type || f.Required != v.Required || f.Default != v.Default {
			t.Errorf("%s is read by %s (%s, required %t, default %q) and by %s (%s, required %t, default %q): make them agree",
				v.Name, f.origin, f.Type, f.Required, f.Default, v.origin, v.Type, v.Required, v.Default)
		}
	}
}

// TestEnvDocConfigFields pins a few rows, so that a broken reflection walk
// (wrong names, lost tags) cannot pass by producing a consistent wrong table.
func TestEnvDocConfigFields(t *testing.T) {
	byName := map[string]EnvVar{}
	for _, v := range EnvVars() {
		byName[v.Name] = v
	}
	for _, want := range []EnvVar{
		{Name: "SERVING_NAMESPACE", Type: "string", Required: true},
		{Name: "CONTAINER_CONCURRENCY", Type: "int", Required: true},
		{Name: "ENABLE_HTTP_FULL_DUPLEX", Type: "bool"},
		{Name: "TRACING_CONFIG_SAMPLE_RATE", Type: "float"},
		{Name: "PROFILING_PORT", Type: "string", Default: "8008"},
		{Name: "QP_DRAIN_QUIET_PERIOD", Type: "duration", Default: "30s"},
	} {
		got, ok := byName[want.Name]
		if !ok {
			t.Errorf("%s missing from EnvVars", want.Name)
			continue
		}
		if got.Type != want.Type || got.Required != want.Required || got.Default != want.Default {
			t.Errorf("%s: got type %s, required %t, default %q; want %s, %t, %q",
				want.Name, got.Type, got.Required, got.Default, want.Type, want.Required, want.Default)
		}
	}
}

// TestEnvDocRequiredMatchesLoadConfig proves "Required" in the reference is
// what startup enforces: the required variables alone start the config, and
// leaving out any one of them is an error naming it.
func TestEnvDocRequiredMatchesLoadConfig(t *testing.T) {
	vars := specEnvVars(config{})
	sample := map[string]string{"string": "1", "int": "1", "bool": "false", "float": "0", "duration": "1s"}
	for _, v := range vars {
		t.Setenv(v.Name, "") // restores the caller's value afterwards
		os.Unsetenv(v.Name)
	}
	for _, v := range vars {
		if v.Required {
			os.Setenv(v.Name, sample[v.Type])
		}
	}
	if _, err := loadConfig(); err != nil {
		t.Fatalf("with only the required variables set: %v", err)
	}
	for _, v := range vars {
		if !v.Required {
			continue
		}
		os.Unsetenv(v.Name)
		if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), v.Name) {
			t.Errorf("without %s: loadConfig returned %v, want an error naming it", v.Name, err)
		}
		os.Setenv(v.Name, sample[v.Type])
	}
}

type upperText string

func (u *upperText) UnmarshalText(b []byte) error {
	if strings.ToUpper(string(b)) != string(b) {
		return errors.New("not upper case")
	}
	*u = upperText(b)
	return nil
}

// checkSpec has a field of each kind envconfig handles differently.
type checkSpec struct {
	S  string          `envconfig:"QPDOC_S"`
	I  int             `envconfig:"QPDOC_I"`
	I8 int8            `envconfig:"QPDOC_I8"`
	U  uint16          `envconfig:"QPDOC_U"`
	B  bool            `envconfig:"QPDOC_B"`
	F  float32         `envconfig:"QPDOC_F"`
	D  time.Duration   `envconfig:"QPDOC_D"`
	L  []int           `envconfig:"QPDOC_L"`
	M  map[string]bool `envconfig:"QPDOC_M"`
	P  *int            `envconfig:"QPDOC_P"`
	T  upperText       `envconfig:"QPDOC_T"`
	N  struct{ X int } // nested: envconfig names it N_X
	W  bool            `split_words:"true"`
	_  int             `envconfig:"QPDOC_BLANK"`
	Z  int             `envconfig:"QPDOC_Z" ignored:"true"`
}

// TestEnvDocCheckMatchesEnvconfig holds EnvVar.Check to envconfig's own
// verdict for every kind of field and a spread of values.
func TestEnvDocCheckMatchesEnvconfig(t *testing.T) {
	vars := specEnvVars(checkSpec{})
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	if got, want := strings.Join(names, " "), "QPDOC_S QPDOC_I QPDOC_I8 QPDOC_U QPDOC_B QPDOC_F QPDOC_D QPDOC_L QPDOC_M QPDOC_P QPDOC_T N_X W"; got != want {
		t.Fatalf("names: got %s, want %s", got, want)
	}
	values := []string{"", " ", "abc", "1", "-1", "0x1f", "300", "1e3", "1.5", "true", "yes", "1s", "-2m", "1,2", "1,x", "a:true", "a:true,b", "a:1:2", "ABC"}
	for _, v := range vars {
		for _, value := range values {
			t.Run(v.Name+"="+value, func(t *testing.T) {
				t.Setenv(v.Name, value)
				want := envconfig.Process("", &checkSpec{})
				got := v.Check(value)
				if (got == nil) != (want == nil) {
					t.Errorf("Check: %v; envconfig.Process: %v", got, want)
				}
			})
		}
	}
}

// TestEnvDocIgnored checks the list of variables Knative sets and we don't
// read: it is exactly the reconciler's list minus what we read, and each
// entry says why.
func TestEnvDocIgnored(t *testing.T) {
	env := ReconcilerEnv()
	if len(env) != 27 {
		t.Errorf("ReconcilerEnv has %d names, CONTRACT.md §1c lists 27", len(env))
	}
	read := map[string]bool{}
	for _, v := range EnvVars() {
		read[v.Name] = true
	}
	seen := map[string]bool{}
	for _, name := range env {
		if seen[name] {
			t.Errorf("ReconcilerEnv lists %s twice", name)
		}
		seen[name] = true
	}
	ignored := map[string]bool{}
	for _, v := range IgnoredEnvVars() {
		ignored[v.Name] = true
		if read[v.Name] {
			t.Errorf("%s is both read and listed as ignored", v.Name)
		}
		if v.Desc == "" {
			t.Errorf("%s: ignored without a reason", v.Name)
		}
	}
	for _, name := range env {
		if !read[name] && !ignored[name] {
			t.Errorf("%s is set by Knative but neither read nor listed as ignored", name)
		}
	}
	for _, name := range []string{"HOST_IP", "ROOT_CA", "SYSTEM_NAMESPACE"} {
		if !ignored[name] {
			t.Errorf("%s: want it listed as accepted and not read", name)
		}
	}
	for name := range ignoredReasons {
		if !seen[name] {
			t.Errorf("ignoredReasons explains %s, which Knative does not set", name)
		}
	}
}

// TestEnvDocObservabilityFields keeps the OBSERVABILITY_CONFIG table in step
// with ObservabilityConfig: every JSON field described, no stale entries.
func TestEnvDocObservabilityFields(t *testing.T) {
	fields := ObservabilityFields()
	paths := map[string]bool{}
	for _, f := range fields {
		paths[f.Path] = true
		if f.Desc == "" {
			t.Errorf("OBSERVABILITY_CONFIG field %s has no entry in observabilityDocs", f.Path)
		}
	}
	for path := range observabilityDocs {
		if !paths[path] {
			t.Errorf("observabilityDocs describes %s, which ObservabilityConfig does not have", path)
		}
	}
	for _, want := range []ObservabilityField{
		{Path: "tracing.protocol", Type: "string", Default: "none"},
		{Path: "runtime.exportInterval", Type: "duration (ns)", Default: "15000000000"},
		{Path: "enableRequestLog", Type: "bool", Default: "false"},
	} {
		found := false
		for _, f := range fields {
			if f.Path == want.Path {
				found = true
				if f.Type != want.Type || f.Default != want.Default {
					t.Errorf("%s: got %s %q, want %s %q", f.Path, f.Type, f.Default, want.Type, want.Default)
				}
			}
		}
		if !found {
			t.Errorf("%s missing", want.Path)
		}
	}
}

// TestBaseEnvIsTheReconcilers: the tests' environment sets exactly the
// variables Knative's reconciler sets, so that it drifts with neither.
func TestBaseEnvIsTheReconcilers(t *testing.T) {
	env := baseEnv()
	for _, name := range ReconcilerEnv() {
		if _, ok := env[name]; !ok {
			t.Errorf("baseEnv lacks %s, which the reconciler sets", name)
		}
		delete(env, name)
	}
	for name := range env {
		t.Errorf("baseEnv sets %s, which the reconciler does not", name)
	}
}
