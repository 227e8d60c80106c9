package logtemplate

import (
	"fmt"
	"reflect"
	"slices"
	"text/template/parse"
	"unicode"
)

// callKind tells the builtins that need special handling from the others.
type callKind uint8

const (
	callPlain callKind = iota
	callAnd            // evaluates its arguments only until one is false
	callOr             // evaluates its arguments only until one is true
	callCall           // the call builtin: also gets the callee's name
)

// callee is something a template can call: a builtin, one of the template's
// functions, or a whitelisted method (then its method expression, whose
// first parameter is the receiver).
type callee struct {
	name string
	typ  reflect.Type  // the signature: arguments are checked and converted for it
	fn   reflect.Value // called through reflection unless a field below applies
	recv int           // 1 for a method, 0 for a function: typ.In(recv) is the first argument
	kind callKind

	// native implements a builtin. Its arguments are converted for typ,
	// except that a reflect.Value parameter gets the value itself.
	native func(args []reflect.Value) (reflect.Value, error)
	// variadicString is fn, when it is a func(...any) string.
	variadicString func(...any) string
	// stringMethod calls a method taking no argument and returning a string.
	stringMethod func(recv reflect.Value) string
}

// userFunc checks a function given to Parse.
func userFunc(name string, f any) (*callee, error) {
	if !isIdentifier(name) {
		return nil, fmt.Errorf("logtemplate: function name %q is not a valid identifier", name)
	}
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Func {
		return nil, fmt.Errorf("logtemplate: value for %s is not a function", name)
	}
	if err := checkResults(name, v.Type()); err != nil {
		return nil, fmt.Errorf("logtemplate: %w", err)
	}
	c := &callee{name: name, typ: v.Type(), fn: v}
	c.variadicString, _ = f.(func(...any) string)
	return c, nil
}

func isIdentifier(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		if r != '_' && !unicode.IsLetter(r) && (i == 0 || !unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}

// checkResults reports whether a function of type typ may be called from a
// template: it must return one value, or two of which the second is an
// error.
func checkResults(name string, typ reflect.Type) error {
	switch n := typ.NumOut(); {
	case n == 1:
		return nil
	case n == 2 && typ.Out(1) == errorType:
		return nil
	case n == 2:
		return fmt.Errorf("invalid function signature for %s: second return value should be error; is %s", name, typ.Out(1))
	default:
		return fmt.Errorf("can't call method/function %q with %d results", name, n)
	}
}

// evalCall calls c with the arguments args (evaluated here) followed by
// final if hasFinal; recv is the receiver of a method. node locates errors.
func (s *state) evalCall(dot reflect.Value, c *callee, recv reflect.Value, node parse.Node, args []parse.Node, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	typ := c.typ
	params := typ.NumIn() - c.recv
	n := len(args)
	if hasFinal {
		n++
	}
	fixed := n
	if typ.IsVariadic() {
		fixed = params - 1
		if n < fixed {
			return noValue, s.errorf(node, "wrong number of args for %s: want at least %d got %d", c.name, fixed, n)
		}
	} else if n != params {
		return noValue, s.errorf(node, "wrong number of args for %s: want %d got %d", c.name, params, n)
	}
	if err := checkResults(c.name, typ); err != nil {
		return noValue, s.errorf(node, "%v", err)
	}
	if c.kind == callAnd || c.kind == callOr {
		return s.evalAndOr(dot, c.kind == callOr, args, final, hasFinal)
	}

	// The arguments go on s.args, above those of the calls in progress.
	base := len(s.args)
	s.args = slices.Grow(s.args, n)[:base+n]
	defer s.popArgs(base)
	for i, arg := range args {
		v, err := s.evalArg(dot, paramType(typ, c.recv, fixed, i), arg)
		if err != nil {
			return noValue, err
		}
		s.args[base+i] = v
	}
	if hasFinal {
		v, err := s.convertArg(node, final, paramType(typ, c.recv, fixed, n-1))
		if err != nil {
			return noValue, err
		}
		s.args[base+n-1] = v
	}
	calleeName := c.name
	if c.kind == callCall {
		if len(args) > 0 {
			calleeName = args[0].String()
		} else {
			calleeName = final.String()
		}
	}
	v, err := c.invoke(recv, s.args[base:base+n], calleeName)
	if err != nil {
		return noValue, s.errorf(node, "error calling %s: %w", c.name, err)
	}
	return v, nil
}

func (s *state) popArgs(base int) {
	clear(s.args[base:])
	s.args = s.args[:base]
}

// paramType is the type of the i-th argument (after the receiver, if any)
// of a function of type typ with fixed non-variadic parameters.
func paramType(typ reflect.Type, recv, fixed, i int) reflect.Type {
	if typ.IsVariadic() && i >= fixed {
		return typ.In(typ.NumIn() - 1).Elem()
	}
	return typ.In(recv + i)
}

// evalAndOr evaluates the builtins and (isOr false) and or: the arguments
// in turn, until one decides the result (false for and, true for or), which
// is returned; else the last one.
func (s *state) evalAndOr(dot reflect.Value, isOr bool, args []parse.Node, final reflect.Value, hasFinal bool) (reflect.Value, error) {
	var v reflect.Value
	for _, arg := range args {
		var err error
		if v, err = s.evalArg(dot, reflectValueType, arg); err != nil {
			return noValue, err
		}
		if truth(v) == isOr {
			return v, nil
		}
	}
	if hasFinal {
		return s.convertArg(nil, final, reflectValueType)
	}
	return v, nil
}

// invoke calls c with converted arguments, turning a panic into an error.
func (c *callee) invoke(recv reflect.Value, args []reflect.Value, calleeName string) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = noValue, panicError(r)
		}
	}()
	if c.recv == 1 && recv.Type() != c.typ.In(0) {
		recv = recv.Elem() // a value method, reached through a pointer
	}
	switch {
	case c.kind == callCall:
		return callFunction(calleeName, args[0], args[1:])
	case c.native != nil:
		return c.native(args)
	case c.variadicString != nil:
		xs := make([]any, len(args))
		for i, a := range args {
			xs[i] = interfaceOf(a)
		}
		return reflect.ValueOf(c.variadicString(xs...)), nil
	case c.stringMethod != nil:
		return reflect.ValueOf(c.stringMethod(recv)), nil
	}
	in := make([]reflect.Value, 0, c.recv+len(args))
	if c.recv == 1 {
		in = append(in, recv)
	}
	fixed := c.typ.NumIn() - c.recv
	if c.typ.IsVariadic() {
		fixed--
	}
	for i, a := range args {
		if paramType(c.typ, c.recv, fixed, i) == reflectValueType {
			a = reflect.ValueOf(a)
		}
		in = append(in, a)
	}
	return results(c.fn.Call(in))
}

// results returns what a call returned: its value (a reflect.Value is
// replaced by the value it holds) or its error.
func results(out []reflect.Value) (reflect.Value, error) {
	if len(out) == 2 && !out[1].IsNil() {
		return noValue, out[1].Interface().(error)
	}
	v := out[0]
	if v.Type() == reflectValueType {
		v = v.Interface().(reflect.Value)
	}
	return v, nil
}

// interfaceOf returns v as an any: nil for the invalid Value.
func interfaceOf(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	return v.Interface()
}

// panicError is the error a function's panic becomes.
func panicError(r any) error {
	if err, ok := r.(error); ok {
		return err
	}
	return fmt.Errorf("%v", r)
}
