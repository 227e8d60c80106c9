package logtemplate

import (
	"fmt"
	"reflect"
	"strings"
	"text/template/parse"
)

// noValue is the absent value: of a nil data, a missing map key, `nil`.
var noValue reflect.Value

// evalPipeline evaluates pipe: each command gets the previous one's value as
// its last argument. A value of type interface{} is replaced by what it
// holds. The pipeline's variables are then declared (or assigned).
func (s *state) evalPipeline(dot reflect.Value, pipe *parse.PipeNode) (reflect.Value, error) {
	if pipe == nil {
		return noValue, nil
	}
	var v reflect.Value
	for i, cmd := range pipe.Cmds {
		var err error
		if v, err = s.evalCommand(dot, cmd, v, i > 0); err != nil {
			return noValue, err
		}
		if v.Kind() == reflect.Interface && v.Type().NumMethod() == 0 {
			v = v.Elem()
		}
	}
	for _, d := range pipe.Decl {
		if pipe.IsAssign {
			if err := s.assignVar(d, d.Ident[0], v); err != nil {
				return noValue, err
			}
		} else {
			s.vars = append(s.vars, variable{d.Ident[0], v})
		}
	}
	return v, nil
}

// evalCommand evaluates one command of a pipeline; final is the previous
// command's value if hasFinal.
func (s *state) evalCommand(dot reflect.Value, cmd *parse.CommandNode, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	head, args := cmd.Args[0], cmd.Args[1:]
	switch n := head.(type) {
	case *parse.FieldNode:
		return s.evalFields(dot, dot, n, n.Ident, args, final, hasFinal)
	case *parse.ChainNode:
		return s.evalChain(dot, n, args, final, hasFinal)
	case *parse.IdentifierNode:
		return s.evalFunction(dot, n, cmd, args, final, hasFinal)
	case *parse.VariableNode:
		return s.evalVariable(dot, n, args, final, hasFinal)
	}
	if len(args) > 0 || hasFinal {
		return noValue, s.errorf(head, "can't give argument to non-function %s", head)
	}
	switch n := head.(type) {
	case *parse.PipeNode:
		return s.evalPipeline(dot, n)
	case *parse.DotNode:
		return dot, nil
	case *parse.NilNode:
		return noValue, s.errorf(n, "nil is not a command")
	case *parse.BoolNode, *parse.NumberNode, *parse.StringNode:
		return s.constant(n)
	}
	return noValue, s.errorf(head, "can't evaluate command %q", head)
}

// evalVariable evaluates $x or $x.Field1.Field2 (the last may be a method
// taking args).
func (s *state) evalVariable(dot reflect.Value, n *parse.VariableNode, args []parse.Node, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	v, err := s.lookupVar(n, n.Ident[0])
	if err != nil {
		return noValue, err
	}
	if len(n.Ident) == 1 {
		if len(args) > 0 || hasFinal {
			return noValue, s.errorf(n, "can't give argument to non-function %s", n)
		}
		return v, nil
	}
	return s.evalFields(dot, v, n, n.Ident[1:], args, final, hasFinal)
}

// evalChain evaluates (pipeline).Field1.Field2 or function.Field1.
func (s *state) evalChain(dot reflect.Value, n *parse.ChainNode, args []parse.Node, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	if len(n.Field) == 0 {
		return noValue, s.errorf(n, "no fields in %s", n)
	}
	if n.Node.Type() == parse.NodeNil {
		return noValue, s.errorf(n, "indirection through explicit nil in %s", n)
	}
	v, err := s.evalArg(dot, nil, n.Node)
	if err != nil {
		return noValue, err
	}
	return s.evalFields(dot, v, n, n.Field, args, final, hasFinal)
}

// evalFunction calls the function a command starts with.
func (s *state) evalFunction(dot reflect.Value, id *parse.IdentifierNode, cmd parse.Node, args []parse.Node, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	c := s.t.funcs[id.Ident]
	if c == nil {
		c = builtins[id.Ident]
	}
	if c == nil {
		return noValue, s.errorf(id, "%q is not a defined function", id.Ident)
	}
	return s.evalCall(dot, c, noValue, cmd, args, final, hasFinal)
}

// evalFields evaluates the chain of field names on receiver; the last name
// gets args and final, which only a method can take.
func (s *state) evalFields(dot, receiver reflect.Value, n parse.Node, names []string, args []parse.Node, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	last := len(names) - 1
	for _, name := range names[:last] {
		var err error
		if receiver, err = s.evalField(dot, n, name, receiver, nil, noValue, false); err != nil {
			return noValue, err
		}
	}
	return s.evalField(dot, n, names[last], receiver, args, final, hasFinal)
}

// evalField evaluates receiver.name: a whitelisted method (called with args
// and final), else a struct field or a map entry. Pointers and interfaces
// are followed to the value. An invalid receiver gives an invalid value (a
// field of nothing is nothing, as for a missing map key).
func (s *state) evalField(dot reflect.Value, n parse.Node, name string, receiver reflect.Value, args []parse.Node, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	if !receiver.IsValid() {
		return noValue, nil
	}
	typ := receiver.Type()
	v, isNil := indirect(receiver)
	if isNil && v.Kind() == reflect.Interface {
		return noValue, s.errorf(n, "nil pointer evaluating %s.%s", typ, name)
	}
	// Methods are looked for in the method set of *T when the value is
	// addressable, as a Go method call would.
	ptr := v
	if v.Kind() != reflect.Pointer && v.CanAddr() {
		ptr = v.Addr()
	}
	r := resolve(ptr.Type(), name)
	if r.method != nil {
		return s.evalCall(dot, r.method, ptr, n, args, final, hasFinal)
	}
	if r.unsupported {
		return noValue, s.errorf(n, "%w", &UnsupportedMethodError{Type: typ, Name: name, Supported: r.supported, Known: true})
	}
	hasArgs := len(args) > 0 || hasFinal
	switch v.Kind() {
	case reflect.Struct:
		if !r.field {
			break
		}
		if !r.exported {
			return noValue, s.errorf(n, "%s is an unexported field of struct type %s", name, typ)
		}
		f, err := v.FieldByIndexErr(r.index)
		if err != nil {
			return noValue, s.errorf(n, "%v", err)
		}
		if hasArgs {
			return noValue, s.errorf(n, "%s has arguments but cannot be invoked as function", name)
		}
		return f, nil
	case reflect.Map:
		if !stringType.AssignableTo(v.Type().Key()) {
			break
		}
		if hasArgs {
			return noValue, s.errorf(n, "%s is not a method but has arguments", name)
		}
		return v.MapIndex(reflect.ValueOf(name)), nil
	case reflect.Pointer: // nil
		if elem := v.Type().Elem(); elem.Kind() == reflect.Struct && !r.field {
			break
		}
		return noValue, s.errorf(n, "nil pointer evaluating %s.%s", typ, name)
	}
	if r.hasMethods {
		return noValue, s.errorf(n, "%w", &UnsupportedMethodError{Type: typ, Name: name})
	}
	return noValue, s.errorf(n, "can't evaluate field %s in type %s", name, typ)
}

// evalArg evaluates an argument for a parameter of type typ and converts it
// as a call would. typ nil accepts any value as it is. For a parameter of
// type reflect.Value, the value itself is returned: the caller wraps it.
func (s *state) evalArg(dot reflect.Value, typ reflect.Type, n parse.Node) (reflect.Value, error) {
	var v reflect.Value
	var err error
	switch arg := n.(type) {
	case *parse.DotNode:
		v = dot
	case *parse.NilNode:
		switch {
		case typ == reflectValueType:
			return noValue, nil
		case typ != nil && canBeNil(typ):
			return reflect.Zero(typ), nil
		}
		return noValue, s.errorf(n, "cannot assign nil to %s", typ)
	case *parse.FieldNode:
		v, err = s.evalFields(dot, dot, arg, arg.Ident, nil, noValue, false)
	case *parse.VariableNode:
		v, err = s.evalVariable(dot, arg, nil, noValue, false)
	case *parse.PipeNode:
		v, err = s.evalPipeline(dot, arg)
	case *parse.IdentifierNode:
		v, err = s.evalFunction(dot, arg, arg, nil, noValue, false)
	case *parse.ChainNode:
		v, err = s.evalChain(dot, arg, nil, noValue, false)
	default:
		return s.evalLiteral(typ, n)
	}
	if err != nil {
		return noValue, err
	}
	return s.convertArg(n, v, typ)
}

// convertArg makes v fit a parameter of type typ: a nil becomes the zero
// value of a nillable type; an interface may give its content, a pointer
// its target, an addressable value its address. typ nil takes any value;
// for reflect.Value (which the caller wraps), a reflect.Value is unwrapped.
func (s *state) convertArg(n parse.Node, v reflect.Value, typ reflect.Type) (reflect.Value, error) {
	switch {
	case typ == nil:
		return v, nil
	case typ == reflectValueType:
		if v.IsValid() && v.Type() == reflectValueType {
			if !v.CanInterface() {
				return noValue, s.errorf(n, "cannot use a reflect.Value read from an unexported field")
			}
			return v.Interface().(reflect.Value), nil
		}
		return v, nil
	case !v.IsValid():
		if canBeNil(typ) {
			return reflect.Zero(typ), nil
		}
		return noValue, s.errorf(n, "invalid value; expected %s", typ)
	case v.Type().AssignableTo(typ):
		return v, nil
	}
	if v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
		if v.Type().AssignableTo(typ) {
			return v, nil
		}
	}
	switch {
	case v.Kind() == reflect.Pointer && v.Type().Elem().AssignableTo(typ):
		if v.IsNil() {
			return noValue, s.errorf(n, "dereference of nil pointer of type %s", typ)
		}
		return v.Elem(), nil
	case v.CanAddr() && reflect.PointerTo(v.Type()).AssignableTo(typ):
		return v.Addr(), nil
	}
	return noValue, s.errorf(n, "wrong type for value; expected %s; got %s", typ, v.Type())
}

// evalLiteral evaluates a bool, number or string literal for a parameter
// of type typ: a number must fit the parameter's kind of number, and takes
// its type.
func (s *state) evalLiteral(typ reflect.Type, n parse.Node) (reflect.Value, error) {
	if typ == nil {
		return noValue, s.errorf(n, "can't evaluate %s", n)
	}
	if typ == reflectValueType || typ.Kind() == reflect.Interface && typ.NumMethod() == 0 {
		switch n.(type) {
		case *parse.BoolNode, *parse.NumberNode, *parse.StringNode:
			return s.constant(n)
		}
		return noValue, s.errorf(n, "can't handle assignment of %s to empty interface argument", n)
	}
	num, _ := n.(*parse.NumberNode)
	switch k := typ.Kind(); {
	case k == reflect.Bool:
		if b, ok := n.(*parse.BoolNode); ok {
			v := reflect.New(typ).Elem()
			v.SetBool(b.True)
			return v, nil
		}
		return noValue, s.errorf(n, "expected bool; found %s", n)
	case k == reflect.String:
		if str, ok := n.(*parse.StringNode); ok {
			if typ == stringType {
				return s.constant(n)
			}
			v := reflect.New(typ).Elem()
			v.SetString(str.Text)
			return v, nil
		}
		return noValue, s.errorf(n, "expected string; found %s", n)
	case isIntKind(k):
		if num != nil && num.IsInt {
			v := reflect.New(typ).Elem()
			v.SetInt(num.Int64)
			return v, nil
		}
		return noValue, s.errorf(n, "expected integer; found %s", n)
	case isUintKind(k):
		if num != nil && num.IsUint {
			v := reflect.New(typ).Elem()
			v.SetUint(num.Uint64)
			return v, nil
		}
		return noValue, s.errorf(n, "expected unsigned integer; found %s", n)
	case k == reflect.Float32 || k == reflect.Float64:
		if num != nil && num.IsFloat {
			v := reflect.New(typ).Elem()
			v.SetFloat(num.Float64)
			return v, nil
		}
		return noValue, s.errorf(n, "expected float; found %s", n)
	case k == reflect.Complex64 || k == reflect.Complex128:
		if num != nil && num.IsComplex {
			v := reflect.New(typ).Elem()
			v.SetComplex(num.Complex128)
			return v, nil
		}
		return noValue, s.errorf(n, "expected complex; found %s", n)
	}
	return noValue, s.errorf(n, "can't handle %s for arg of type %s", n, typ)
}

// constant is the value of a literal, or why it has none.
type constant struct {
	v   reflect.Value
	err string
}

// constant returns the value of a literal.
func (s *state) constant(n parse.Node) (reflect.Value, error) {
	c, ok := s.t.consts[n]
	if !ok {
		c = literal(n)
	}
	if c.err != "" {
		return noValue, s.errorf(n, "%s", c.err)
	}
	return c.v, nil
}

// literal computes the value of a bool, string or number literal. A number
// is an "ideal constant": a complex128 if it is imaginary, a float64 if it
// is written as a float (with a point, an exponent), else an int (a rune
// literal too), which it must fit.
func literal(n parse.Node) constant {
	switch n := n.(type) {
	case *parse.BoolNode:
		return constant{v: reflect.ValueOf(n.True)}
	case *parse.StringNode:
		return constant{v: reflect.ValueOf(n.Text)}
	case *parse.NumberNode:
		text := n.Text
		isRune := strings.HasPrefix(text, "'")
		isHexInt := len(text) > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') && !strings.ContainsAny(text, "pP")
		switch {
		case n.IsComplex:
			return constant{v: reflect.ValueOf(n.Complex128)}
		case n.IsFloat && !isRune && !isHexInt && strings.ContainsAny(text, ".eEpP"):
			return constant{v: reflect.ValueOf(n.Float64)}
		case n.IsInt:
			i := int(n.Int64)
			if int64(i) != n.Int64 {
				return constant{err: text + " overflows int"}
			}
			return constant{v: reflect.ValueOf(i)}
		case n.IsUint:
			return constant{err: text + " overflows int"}
		}
		return constant{}
	}
	return constant{err: "not a constant: " + n.String()}
}

// collectConstants computes the value of every literal under n into m.
func collectConstants(n parse.Node, m map[parse.Node]constant) {
	switch n := n.(type) {
	case *parse.BoolNode, *parse.StringNode, *parse.NumberNode:
		m[n] = literal(n)
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				collectConstants(c, m)
			}
		}
	case *parse.ActionNode:
		collectConstants(n.Pipe, m)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				collectConstants(c, m)
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			collectConstants(a, m)
		}
	case *parse.ChainNode:
		collectConstants(n.Node, m)
	case *parse.IfNode:
		collectBranch(&n.BranchNode, m)
	case *parse.WithNode:
		collectBranch(&n.BranchNode, m)
	case *parse.RangeNode:
		collectBranch(&n.BranchNode, m)
	case *parse.TemplateNode:
		collectConstants(n.Pipe, m)
	}
}

func collectBranch(b *parse.BranchNode, m map[parse.Node]constant) {
	collectConstants(b.Pipe, m)
	collectConstants(b.List, m)
	collectConstants(b.ElseList, m)
}

var (
	stringType       = reflect.TypeFor[string]()
	reflectValueType = reflect.TypeFor[reflect.Value]()
	errorType        = reflect.TypeFor[error]()
	stringerType     = reflect.TypeFor[fmt.Stringer]()
)

// canBeNil reports whether nil is a value of typ.
func canBeNil(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return true
	case reflect.Struct:
		return typ == reflectValueType // its zero value is "nil"
	}
	return false
}

func isIntKind(k reflect.Kind) bool { return reflect.Int <= k && k <= reflect.Int64 }

func isUintKind(k reflect.Kind) bool { return reflect.Uint <= k && k <= reflect.Uintptr }
