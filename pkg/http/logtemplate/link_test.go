package logtemplate

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// canaryProgram executes a template on a value of a type whose exported
// method Unused is never called. The linker drops Unused unless something
// in the program may call methods by name (reflect's Method or
// MethodByName), which switches off dead-method elimination.
const canaryProgram = `package main

import (
	"os"

	IMPORT
)

type canary struct{ Name string }

func (c canary) Unused() string { return "unused " + c.Name }

func main() {
	t, err := PARSE
	if err != nil {
		panic(err)
	}
	if err := t.Execute(os.Stdout, canary{Name: "canary"}); err != nil {
		panic(err)
	}
}
`

// TestDeadMethodElimination builds a program using this package and checks
// with go tool nm that the linker removed an unused method and that
// text/template is not linked. The same program using text/template serves
// as the control: there the method must be kept.
func TestDeadMethodElimination(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")

	build := func(name, importLine, parse string) (symbols, output string) {
		dir := filepath.Join(t.TempDir(), name)
		src := strings.NewReplacer("IMPORT", importLine, "PARSE", parse).Replace(canaryProgram)
		goMod := "module canary\n\ngo 1.26\n\nrequire github.com/queue-proxy/queue-proxy v0.0.0\n\n" +
			"replace github.com/queue-proxy/queue-proxy => " + root + "\n"
		for file, content := range map[string]string{"main.go": src, "go.mod": goMod, "go.sum": string(goSum)} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		bin := filepath.Join(dir, "canary")
		cmd := exec.Command(goTool, "build", "-mod=mod", "-o", bin, ".")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the %s program: %v\n%s", name, err, out)
		}
		nm, err := exec.Command(goTool, "tool", "nm", bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool nm: %v\n%s", err, nm)
		}
		out, err := exec.Command(bin).CombinedOutput()
		if err != nil {
			t.Fatalf("running the %s program: %v\n%s", name, err, out)
		}
		return string(nm), string(out)
	}
	hasSymbol := func(symbols, prefix string) bool {
		for _, line := range strings.Split(symbols, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && strings.HasPrefix(f[len(f)-1], prefix) {
				return true
			}
		}
		return false
	}
	const text = `"t", "{{.Name}} {{.}}\n"`

	symbols, out := build("logtemplate", `"github.com/queue-proxy/queue-proxy/pkg/http/logtemplate"`,
		`logtemplate.Parse(`+text+`, nil)`)
	if out != "canary {canary}\n" {
		t.Errorf("logtemplate program printed %q", out)
	}
	if hasSymbol(symbols, "main.canary.Unused") || hasSymbol(symbols, "main.(*canary).Unused") {
		t.Error("canary.Unused is linked: dead-method elimination is off")
	}
	if hasSymbol(symbols, "text/template.") {
		t.Error("text/template is linked")
	}
	if !hasSymbol(symbols, "text/template/parse.") {
		t.Error("text/template/parse is not linked: is the symbol check working?")
	}

	// The control: text/template keeps every exported method.
	symbols, out = build("texttemplate", `"text/template"`, `template.New(`+strings.Replace(text, ",", ").Parse(", 1)+`)`)
	if out != "canary {canary}\n" {
		t.Errorf("text/template program printed %q", out)
	}
	if !hasSymbol(symbols, "main.canary.Unused") {
		t.Error("with text/template, canary.Unused is not linked: the check cannot detect anything")
	}
}
