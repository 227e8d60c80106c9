package logtemplate

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
)

// builtins are the functions every template has, as in text/template.
// Their signatures (typ) are text/template's, so that arguments are checked
// and converted the same way; they are implemented natively.
var builtins = map[string]*callee{
	"and":      {typ: reflect.TypeFor[func(reflect.Value, ...reflect.Value) reflect.Value](), kind: callAnd},
	"or":       {typ: reflect.TypeFor[func(reflect.Value, ...reflect.Value) reflect.Value](), kind: callOr},
	"not":      {typ: reflect.TypeFor[func(reflect.Value) bool](), native: notFunc},
	"call":     {typ: reflect.TypeFor[func(reflect.Value, ...reflect.Value) (reflect.Value, error)](), kind: callCall},
	"len":      {typ: reflect.TypeFor[func(reflect.Value) (int, error)](), native: lenFunc},
	"index":    {typ: reflect.TypeFor[func(reflect.Value, ...reflect.Value) (reflect.Value, error)](), native: indexFunc},
	"slice":    {typ: reflect.TypeFor[func(reflect.Value, ...reflect.Value) (reflect.Value, error)](), native: sliceFunc},
	"print":    {typ: reflect.TypeFor[func(...any) string](), native: printFunc},
	"printf":   {typ: reflect.TypeFor[func(string, ...any) string](), native: printfFunc},
	"println":  {typ: reflect.TypeFor[func(...any) string](), native: printlnFunc},
	"html":     {typ: reflect.TypeFor[func(...any) string](), native: htmlFunc},
	"js":       {typ: reflect.TypeFor[func(...any) string](), native: jsFunc},
	"urlquery": {typ: reflect.TypeFor[func(...any) string](), native: urlqueryFunc},
	"eq":       {typ: reflect.TypeFor[func(reflect.Value, ...reflect.Value) (bool, error)](), native: eqFunc},
	"ne":       {typ: reflect.TypeFor[func(reflect.Value, reflect.Value) (bool, error)](), native: neFunc},
	"lt":       {typ: reflect.TypeFor[func(reflect.Value, reflect.Value) (bool, error)](), native: ltFunc},
	"le":       {typ: reflect.TypeFor[func(reflect.Value, reflect.Value) (bool, error)](), native: leFunc},
	"gt":       {typ: reflect.TypeFor[func(reflect.Value, reflect.Value) (bool, error)](), native: gtFunc},
	"ge":       {typ: reflect.TypeFor[func(reflect.Value, reflect.Value) (bool, error)](), native: geFunc},
}

func init() {
	for name, b := range builtins {
		b.name = name
	}
}

var (
	trueValue  = reflect.ValueOf(true)
	falseValue = reflect.ValueOf(false)
)

func boolValue(b bool) reflect.Value {
	if b {
		return trueValue
	}
	return falseValue
}

// notFunc is `not x`: whether x is false (see isTrue).
func notFunc(args []reflect.Value) (reflect.Value, error) {
	return boolValue(!truth(args[0])), nil
}

// lenFunc is `len x`, for arrays, channels, maps, slices and strings (also
// behind pointers).
func lenFunc(args []reflect.Value) (reflect.Value, error) {
	v, isNil := indirect(args[0])
	switch {
	case isNil:
		return noValue, errors.New("len of nil pointer")
	case !v.IsValid():
		return noValue, errors.New("len of nil")
	}
	switch v.Kind() {
	case reflect.Array, reflect.Chan, reflect.Map, reflect.Slice, reflect.String:
		return intValue(v.Len()), nil
	}
	return noValue, fmt.Errorf("len of type %s", v.Type())
}

// indexFunc is `index x i j…`: x[i][j]…. A missing map key gives the zero
// value of the map's element type.
func indexFunc(args []reflect.Value) (reflect.Value, error) {
	item := indirectInterface(args[0])
	if !item.IsValid() {
		return noValue, errors.New("index of untyped nil")
	}
	for _, i := range args[1:] {
		i = indirectInterface(i)
		var isNil bool
		if item, isNil = indirect(item); isNil {
			return noValue, errors.New("index of nil pointer")
		}
		switch item.Kind() {
		case reflect.Array, reflect.Slice, reflect.String:
			x, err := position(i, item.Len())
			if err != nil {
				return noValue, err
			}
			if x == item.Len() {
				return noValue, fmt.Errorf("index out of range: %d", x)
			}
			item = item.Index(x)
		case reflect.Map:
			key, err := convertCallArg(i, item.Type().Key())
			if err != nil {
				return noValue, err
			}
			if v := item.MapIndex(key); v.IsValid() {
				item = v
			} else {
				item = reflect.Zero(item.Type().Elem())
			}
		default:
			return noValue, fmt.Errorf("can't index item of type %s", item.Type())
		}
	}
	return item, nil
}

// sliceFunc is `slice x i j k`: x[i:j:k], with 0 to 3 indexes.
func sliceFunc(args []reflect.Value) (reflect.Value, error) {
	item, indexes := indirectInterface(args[0]), args[1:]
	if !item.IsValid() {
		return noValue, errors.New("slice of untyped nil")
	}
	if len(indexes) > 3 {
		return noValue, fmt.Errorf("too many slice indexes: %d", len(indexes))
	}
	var limit int
	switch item.Kind() {
	case reflect.String:
		if len(indexes) == 3 {
			return noValue, errors.New("cannot 3-index slice a string")
		}
		limit = item.Len()
	case reflect.Array, reflect.Slice:
		limit = item.Cap()
	default:
		return noValue, fmt.Errorf("can't slice item of type %s", item.Type())
	}
	bounds := [3]int{0, item.Len()}
	for i, v := range indexes {
		x, err := position(v, limit)
		if err != nil {
			return noValue, err
		}
		bounds[i] = x
	}
	if bounds[0] > bounds[1] {
		return noValue, fmt.Errorf("invalid slice index: %d > %d", bounds[0], bounds[1])
	}
	if len(indexes) < 3 {
		return item.Slice(bounds[0], bounds[1]), nil // panics (caught) for an unaddressable array
	}
	if bounds[1] > bounds[2] {
		return noValue, fmt.Errorf("invalid slice index: %d > %d", bounds[1], bounds[2])
	}
	return item.Slice3(bounds[0], bounds[1], bounds[2]), nil
}

// position converts an index argument to an int in [0, limit].
func position(v reflect.Value, limit int) (int, error) {
	var x int64
	switch k := v.Kind(); {
	case isIntKind(k):
		x = v.Int()
	case isUintKind(k):
		x = int64(v.Uint())
	case k == reflect.Invalid:
		return 0, errors.New("cannot index slice/array with nil")
	default:
		return 0, fmt.Errorf("cannot index slice/array with type %s", v.Type())
	}
	if x < 0 || int(x) < 0 || int(x) > limit {
		return 0, fmt.Errorf("index out of range: %d", x)
	}
	return int(x), nil
}

// callFunction is `call fn args…`: calls the function value fn (named
// name in errors), converting arguments only by assignment or between
// integer types.
func callFunction(name string, fn reflect.Value, args []reflect.Value) (reflect.Value, error) {
	fn = indirectInterface(fn)
	if !fn.IsValid() {
		return noValue, errors.New("call of nil")
	}
	typ := fn.Type()
	if typ.Kind() != reflect.Func {
		return noValue, fmt.Errorf("non-function %s of type %s", name, typ)
	}
	if err := checkResults(name, typ); err != nil {
		return noValue, err
	}
	numIn := typ.NumIn()
	if typ.IsVariadic() {
		if len(args) < numIn-1 {
			return noValue, fmt.Errorf("wrong number of args for %s: got %d want at least %d", name, len(args), numIn-1)
		}
	} else if len(args) != numIn {
		return noValue, fmt.Errorf("wrong number of args for %s: got %d want %d", name, len(args), numIn)
	}
	in := make([]reflect.Value, len(args))
	for i, a := range args {
		t := paramType(typ, 0, numIn-1, i)
		v, err := convertCallArg(indirectInterface(a), t)
		if err != nil {
			return noValue, fmt.Errorf("arg %d: %w", i, err)
		}
		in[i] = v
	}
	return results(fn.Call(in))
}

// convertCallArg converts an argument of call (or a map key of index) to
// typ: nil to a nillable type's zero value; otherwise the value must be
// assignable, or an integer convertible, to typ.
func convertCallArg(v reflect.Value, typ reflect.Type) (reflect.Value, error) {
	if !v.IsValid() {
		if !canBeNil(typ) {
			return noValue, fmt.Errorf("value is nil; should be of type %s", typ)
		}
		return reflect.Zero(typ), nil
	}
	if v.Type().AssignableTo(typ) {
		return v, nil
	}
	if k, tk := v.Kind(), typ.Kind(); (isIntKind(k) || isUintKind(k)) && (isIntKind(tk) || isUintKind(tk)) && v.Type().ConvertibleTo(typ) {
		return v.Convert(typ), nil
	}
	return noValue, fmt.Errorf("value has type %s; should be %s", v.Type(), typ)
}

// anys returns the arguments as a []any for fmt.
func anys(args []reflect.Value) []any {
	xs := make([]any, len(args))
	for i, a := range args {
		xs[i] = interfaceOf(a)
	}
	return xs
}

func printFunc(args []reflect.Value) (reflect.Value, error) {
	return reflect.ValueOf(fmt.Sprint(anys(args)...)), nil
}

func printfFunc(args []reflect.Value) (reflect.Value, error) {
	return reflect.ValueOf(fmt.Sprintf(args[0].String(), anys(args[1:])...)), nil
}

func printlnFunc(args []reflect.Value) (reflect.Value, error) {
	return reflect.ValueOf(fmt.Sprintln(anys(args)...)), nil
}

func htmlFunc(args []reflect.Value) (reflect.Value, error) {
	return reflect.ValueOf(escapeHTML(argsText(args))), nil
}

func jsFunc(args []reflect.Value) (reflect.Value, error) {
	return reflect.ValueOf(escapeJS(argsText(args))), nil
}

func urlqueryFunc(args []reflect.Value) (reflect.Value, error) {
	return reflect.ValueOf(url.QueryEscape(argsText(args))), nil
}

// argsText is the text the escaping builtins escape: a single string
// argument as it is, else the arguments printed as {{.}} prints them (the
// values pointers point at, for instance), separated as fmt.Sprint does.
func argsText(args []reflect.Value) string {
	xs := anys(args)
	if len(xs) == 1 {
		if s, ok := xs[0].(string); ok {
			return s
		}
	}
	for i, x := range xs {
		if p, ok := printable(reflect.ValueOf(x)); ok {
			xs[i] = p
		}
	}
	return fmt.Sprint(xs...)
}
