package logtemplate

import (
	"errors"
	"fmt"
	"reflect"
)

// The comparison builtins follow text/template: eq and ne compare basic
// values (booleans, numbers, strings) by value, where integers compare
// across signedness and size but not with floats; other values of the same
// kind compare with Go's ==, or against nil. lt, le, gt and ge order
// integers, floats and strings only.

var (
	errBadComparisonType = errors.New("invalid type for comparison")
	errBadComparison     = errors.New("incompatible types for comparison")
	errNoComparison      = errors.New("missing argument for comparison")
)

// class groups the kinds that compare with each other.
type class uint8

const (
	otherClass class = iota
	boolClass
	intClass
	uintClass
	floatClass
	complexClass
	stringClass
)

func classOf(v reflect.Value) class {
	switch k := v.Kind(); {
	case k == reflect.Bool:
		return boolClass
	case isIntKind(k):
		return intClass
	case isUintKind(k):
		return uintClass
	case k == reflect.Float32 || k == reflect.Float64:
		return floatClass
	case k == reflect.Complex64 || k == reflect.Complex128:
		return complexClass
	case k == reflect.String:
		return stringClass
	}
	return otherClass
}

// equal reports whether a == b, for values already taken out of interfaces.
func equal(a, b reflect.Value) (bool, error) {
	ca, cb := classOf(a), classOf(b)
	if ca != cb {
		switch {
		case ca == intClass && cb == uintClass:
			return a.Int() >= 0 && uint64(a.Int()) == b.Uint(), nil
		case ca == uintClass && cb == intClass:
			return b.Int() >= 0 && a.Uint() == uint64(b.Int()), nil
		case a.IsValid() && b.IsValid():
			return false, errBadComparison
		}
		return false, nil // nil is equal to no basic value
	}
	switch ca {
	case boolClass:
		return a.Bool() == b.Bool(), nil
	case intClass:
		return a.Int() == b.Int(), nil
	case uintClass:
		return a.Uint() == b.Uint(), nil
	case floatClass:
		return a.Float() == b.Float(), nil
	case complexClass:
		return a.Complex() == b.Complex(), nil
	case stringClass:
		return a.String() == b.String(), nil
	}
	if a.Kind() != b.Kind() && a.IsValid() && b.IsValid() {
		return false, fmt.Errorf("non-comparable types %v: %v, %v: %v", a, a.Type(), b.Type(), b)
	}
	if an, bn := isNilValue(a), isNilValue(b); an || bn {
		return an == bn, nil
	}
	if !b.Type().Comparable() {
		return false, fmt.Errorf("non-comparable type %v: %v", b, b.Type())
	}
	return a.Interface() == b.Interface(), nil // may panic (caught) on uncomparable contents
}

// isNilValue reports whether v is nil: invalid, or a nil of a nillable kind.
func isNilValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Invalid:
		return true
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return v.IsNil()
	}
	return false
}

// less reports whether a < b.
func less(a, b reflect.Value) (bool, error) {
	a, b = indirectInterface(a), indirectInterface(b)
	ca, cb := classOf(a), classOf(b)
	if ca == otherClass || cb == otherClass {
		return false, errBadComparisonType
	}
	if ca != cb {
		switch {
		case ca == intClass && cb == uintClass:
			return a.Int() < 0 || uint64(a.Int()) < b.Uint(), nil
		case ca == uintClass && cb == intClass:
			return b.Int() >= 0 && a.Uint() < uint64(b.Int()), nil
		}
		return false, errBadComparison
	}
	switch ca {
	case intClass:
		return a.Int() < b.Int(), nil
	case uintClass:
		return a.Uint() < b.Uint(), nil
	case floatClass:
		return a.Float() < b.Float(), nil
	case stringClass:
		return a.String() < b.String(), nil
	}
	return false, errBadComparisonType // booleans, complex numbers
}

// eqFunc is `eq a b c…`: whether a equals any of b, c….
func eqFunc(args []reflect.Value) (reflect.Value, error) {
	if len(args) < 2 {
		return noValue, errNoComparison
	}
	a := indirectInterface(args[0])
	for _, b := range args[1:] {
		eq, err := equal(a, indirectInterface(b))
		if err != nil || eq {
			return boolValue(eq), err
		}
	}
	return falseValue, nil
}

func neFunc(args []reflect.Value) (reflect.Value, error) {
	eq, err := equal(indirectInterface(args[0]), indirectInterface(args[1]))
	return boolValue(!eq), err
}

func ltFunc(args []reflect.Value) (reflect.Value, error) {
	lt, err := less(args[0], args[1])
	return boolValue(lt), err
}

func leFunc(args []reflect.Value) (reflect.Value, error) {
	le, err := lessOrEqual(args[0], args[1])
	return boolValue(le), err
}

func gtFunc(args []reflect.Value) (reflect.Value, error) {
	le, err := lessOrEqual(args[0], args[1])
	return boolValue(!le && err == nil), err
}

func geFunc(args []reflect.Value) (reflect.Value, error) {
	lt, err := less(args[0], args[1])
	return boolValue(!lt && err == nil), err
}

func lessOrEqual(a, b reflect.Value) (bool, error) {
	if lt, err := less(a, b); lt || err != nil {
		return lt, err
	}
	return equal(indirectInterface(a), indirectInterface(b))
}
