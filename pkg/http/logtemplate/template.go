// Package logtemplate executes Go text/template templates for the request
// log without linking text/template.
//
// text/template resolves `.Name` with reflect.Value.MethodByName on a name
// only known at run time. A binary that does that anywhere makes the Go
// linker keep every exported method of every reachable type (dead-method
// elimination is switched off), which costs this proxy well over a MiB of
// binary and resident memory. This package parses with the standard
// text/template/parse package (the same syntax and parse errors) and executes
// the tree with its own interpreter, which produces the same output as
// text/template but calls methods only from a fixed whitelist (see
// methods.go), through method expressions: it never looks a method up by
// name.
//
// Differences from text/template:
//
//   - A method can be called only if it is on the whitelist. Calling another
//     method of a type whose method set is known (http.Request, http.Header,
//     url.URL, url.Values, url.Userinfo, http.Cookie, the request log's input
//     types) fails with an error matching ErrUnsupportedMethod. For any other
//     type, `.Name` resolves to fields and map keys only; if it is neither
//     and the type has methods, the error also matches ErrUnsupportedMethod.
//   - Only the default options: missing map keys print `<no value>`; the
//     delimiters are `{{` and `}}`.
//   - Error messages have the same content but are worded and prefixed by
//     this package.
package logtemplate

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"text/template/parse"
)

// ErrUnsupportedMethod is matched (errors.Is) by the execution error of a
// template that calls a method request log templates cannot call.
var ErrUnsupportedMethod = errors.New("request log templates cannot call this method")

// UnsupportedMethodError describes a call of a method outside the whitelist.
// It matches ErrUnsupportedMethod.
type UnsupportedMethodError struct {
	// Type is the type the method was looked up on (as in the template,
	// before pointers are followed).
	Type reflect.Type
	// Name is the method's name.
	Name string
	// Supported lists the methods of Type that may be called; it is empty
	// when Type's methods are not known to this package.
	Supported []string
	// Known reports whether Name is known to be a method of Type. When it is
	// false, Type has methods this package does not know of, and Name is not
	// a field or map key of it.
	Known bool
}

func (e *UnsupportedMethodError) Error() string {
	if !e.Known {
		return fmt.Sprintf("can't evaluate field %s in type %s: request log templates cannot call methods of %s",
			e.Name, e.Type, e.Type)
	}
	if len(e.Supported) == 0 {
		return fmt.Sprintf("request log templates cannot call method %s of %s (no method of it is supported)", e.Name, e.Type)
	}
	return fmt.Sprintf("request log templates cannot call method %s of %s (supported: %s)",
		e.Name, e.Type, joinNames(e.Supported))
}

// Is reports whether target is ErrUnsupportedMethod.
func (e *UnsupportedMethodError) Is(target error) bool { return target == ErrUnsupportedMethod }

// ExecError is an error a template returned while it executed. Its message
// places it in the template as text/template's errors do.
type ExecError struct {
	Name     string // the template executing (a define's name inside one)
	Location string // name:line:col
	Context  string // the failing node, as text
	Err      error
}

func (e *ExecError) Error() string {
	if e.Location == "" {
		return fmt.Sprintf("template: %s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("template: %s: executing %q at <%s>: %v", e.Location, e.Name, e.Context, e.Err)
}

func (e *ExecError) Unwrap() error { return e.Err }

// Template is a parsed template: the tree of its name and those it defines.
// It is safe for concurrent use by Execute.
type Template struct {
	name  string
	trees map[string]*parse.Tree
	funcs map[string]*callee // user functions, by name; they hide builtins
	// consts holds the value of every string, bool and number literal,
	// computed once so that executing one costs no allocation.
	consts map[parse.Node]constant
}

// Parse parses text with text/template/parse, as text/template's
// New(name).Funcs(funcs).Parse(text) does. funcs are extra functions
// available to the template; they hide builtins of the same name. Every
// value in funcs must be a function with one result, or two of which the
// second is an error.
func Parse(name, text string, funcs map[string]any) (*Template, error) {
	t := &Template{name: name, funcs: make(map[string]*callee, len(funcs))}
	names := make(map[string]any, len(builtins)+len(funcs))
	for n, b := range builtins {
		names[n] = b
	}
	for n, f := range funcs {
		c, err := userFunc(n, f)
		if err != nil {
			return nil, err
		}
		t.funcs[n] = c
		names[n] = f
	}
	trees, err := parse.Parse(name, text, "", "", names)
	if err != nil {
		return nil, err
	}
	t.trees = trees
	t.consts = make(map[parse.Node]constant)
	for _, tree := range trees {
		collectConstants(tree.Root, t.consts)
	}
	return t, nil
}

// Name returns the name the template was parsed with.
func (t *Template) Name() string { return t.name }

// Execute applies the template to data, writing to w. On an error, what was
// written before it stays written. An error from w is returned as it is.
func (t *Template) Execute(w io.Writer, data any) error {
	value, ok := data.(reflect.Value)
	if !ok {
		value = reflect.ValueOf(data)
	}
	tree := t.trees[t.name]
	if tree == nil || tree.Root == nil {
		return &ExecError{Name: t.name, Err: fmt.Errorf("%q is an incomplete or empty template", t.name)}
	}
	s := newState(t, w)
	defer s.release()
	return s.run(tree, value)
}
