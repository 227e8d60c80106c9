package logtemplate

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"text/template/parse"
)

// maxTemplateDepth bounds how deeply {{template}} calls may nest, as
// text/template does (with the same limit), so that a template invoking
// itself fails instead of exhausting the stack.
const maxTemplateDepth = 100000

// errInternal marks a panic of the executor itself (a bug): Execute turns it
// into an error rather than crash the process.
var errInternal = errors.New("internal error")

// control is how a walk ends: normally, or at {{break}} or {{continue}}.
type control uint8

const (
	flowNext control = iota
	flowBreak
	flowContinue
)

// variable is one $name in scope.
type variable struct {
	name  string
	value reflect.Value
}

// state is one execution of a template. Variables of all the templates
// being executed (the caller's and the {{template}}s it invoked) share one
// stack; those of the running template start at base.
type state struct {
	t     *Template
	w     io.Writer
	tree  *parse.Tree // the tree executing, for error messages
	vars  []variable
	base  int
	depth int
	args  []reflect.Value // a stack of call arguments, reused across calls
	buf   [64]byte        // for formatting numbers
}

var statePool = sync.Pool{New: func() any { return new(state) }}

func newState(t *Template, w io.Writer) *state {
	s := statePool.Get().(*state)
	s.t, s.w = t, w
	return s
}

// release clears s of anything the execution referenced and pools it.
func (s *state) release() {
	clear(s.vars)
	clear(s.args)
	vars, args := s.vars[:0], s.args[:0]
	if cap(vars) > 256 {
		vars = nil
	}
	if cap(args) > 256 {
		args = nil
	}
	*s = state{vars: vars, args: args}
	statePool.Put(s)
}

// run executes tree with dot as both dot and $.
func (s *state) run(tree *parse.Tree, dot reflect.Value) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ExecError{Name: s.t.name, Err: fmt.Errorf("%w: %v", errInternal, r)}
		}
	}()
	s.tree = tree
	s.vars = append(s.vars, variable{"$", dot})
	_, err = s.walk(dot, tree.Root)
	return err
}

// errorf returns an execution error located at node n.
func (s *state) errorf(n parse.Node, format string, args ...any) error {
	e := &ExecError{Name: s.tree.Name, Err: fmt.Errorf(format, args...)}
	if n != nil {
		e.Location, e.Context = s.tree.ErrorContext(n)
	}
	return e
}

// walk executes node with dot as the value of `.`.
func (s *state) walk(dot reflect.Value, node parse.Node) (control, error) {
	switch n := node.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			if ctl, err := s.walk(dot, c); ctl != flowNext || err != nil {
				return ctl, err
			}
		}
	case *parse.TextNode:
		if _, err := s.w.Write(n.Text); err != nil {
			return flowNext, err
		}
	case *parse.ActionNode:
		v, err := s.evalPipeline(dot, n.Pipe)
		if err != nil || len(n.Pipe.Decl) > 0 {
			return flowNext, err // a declaration prints nothing
		}
		return flowNext, s.print(n, v)
	case *parse.IfNode:
		return s.walkBranch(dot, &n.BranchNode, false)
	case *parse.WithNode:
		return s.walkBranch(dot, &n.BranchNode, true)
	case *parse.RangeNode:
		return s.walkRange(dot, n)
	case *parse.TemplateNode:
		return flowNext, s.walkTemplate(dot, n)
	case *parse.BreakNode:
		return flowBreak, nil
	case *parse.ContinueNode:
		return flowContinue, nil
	case *parse.CommentNode:
	default:
		return flowNext, s.errorf(node, "unknown node: %s", node)
	}
	return flowNext, nil
}

// walkBranch executes an {{if}} (with is false) or a {{with}}: the list when
// the pipeline's value is true, else the else list. Variables the pipeline
// declares are visible in both and go out of scope at the end.
func (s *state) walkBranch(dot reflect.Value, b *parse.BranchNode, with bool) (control, error) {
	mark := len(s.vars)
	defer s.popVars(mark)
	v, err := s.evalPipeline(dot, b.Pipe)
	if err != nil {
		return flowNext, err
	}
	truth, ok := isTrue(indirectInterface(v))
	if !ok {
		return flowNext, s.errorf(b.Pipe, "if/with can't use %v", v)
	}
	switch {
	case truth && with:
		return s.walk(v, b.List)
	case truth:
		return s.walk(dot, b.List)
	case b.ElseList != nil:
		return s.walk(dot, b.ElseList)
	}
	return flowNext, nil
}

func (s *state) popVars(mark int) {
	clear(s.vars[mark:])
	s.vars = s.vars[:mark]
}

// walkTemplate executes {{template "name" pipeline}}: the named template,
// with the pipeline's value as dot and $, and no variable of the caller.
func (s *state) walkTemplate(dot reflect.Value, n *parse.TemplateNode) error {
	tree := s.t.trees[n.Name]
	if tree == nil {
		return s.errorf(n, "template %q not defined", n.Name)
	}
	if s.depth >= maxTemplateDepth {
		return s.errorf(n, "exceeded maximum template depth (%v)", maxTemplateDepth)
	}
	// Variables the pipeline declares stay in the caller's scope.
	dot, err := s.evalPipeline(dot, n.Pipe)
	if err != nil {
		return err
	}
	callerTree, callerBase, mark := s.tree, s.base, len(s.vars)
	s.tree, s.base = tree, mark
	s.depth++
	s.vars = append(s.vars, variable{"$", dot})
	_, err = s.walk(dot, tree.Root) // the parser keeps break and continue inside a range
	s.depth--
	s.popVars(mark)
	s.tree, s.base = callerTree, callerBase
	return err
}

// lookupVar returns the value of the innermost variable called name.
func (s *state) lookupVar(n parse.Node, name string) (reflect.Value, error) {
	for i := len(s.vars) - 1; i >= s.base; i-- {
		if s.vars[i].name == name {
			return s.vars[i].value, nil
		}
	}
	return reflect.Value{}, s.errorf(n, "undefined variable: %s", name)
}

// assignVar sets the innermost variable called name (`$x = value`).
func (s *state) assignVar(n parse.Node, name string, v reflect.Value) error {
	for i := len(s.vars) - 1; i >= s.base; i-- {
		if s.vars[i].name == name {
			s.vars[i].value = v
			return nil
		}
	}
	return s.errorf(n, "undefined variable: %s", name)
}

// isTrue reports whether v is "true" as if, with, and, or and not see it:
// not the zero value of its type, and not empty. ok is false for values of
// kinds that have no truth (e.g. unsafe pointers).
func isTrue(v reflect.Value) (truth, ok bool) {
	if !v.IsValid() {
		return false, true
	}
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() > 0, true
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0, true
	case reflect.Float32, reflect.Float64:
		return v.Float() != 0, true
	case reflect.Complex64, reflect.Complex128:
		return v.Complex() != 0, true
	case reflect.Chan, reflect.Func, reflect.Pointer, reflect.UnsafePointer, reflect.Interface:
		return !v.IsNil(), true
	case reflect.Struct:
		return true, true
	}
	return false, false
}

// truth is isTrue for and, or and not, which accept any value.
func truth(v reflect.Value) bool {
	t, _ := isTrue(indirectInterface(v))
	return t
}

// indirect follows pointers and interfaces down to a value that is neither,
// or to the nil one it meets (then isNil is true).
func indirect(v reflect.Value) (_ reflect.Value, isNil bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return v, true
		}
		v = v.Elem()
	}
	return v, false
}

// indirectInterface returns the value inside an interface value: the
// invalid Value for a nil one, v itself if v is not an interface.
func indirectInterface(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface {
		return v
	}
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}
