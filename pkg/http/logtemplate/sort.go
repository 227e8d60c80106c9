package logtemplate

import (
	"cmp"
	"reflect"
	"slices"
)

// entry is one key and value of a map.
type entry struct{ key, value reflect.Value }

// sortedMap returns m's entries ordered by key as text/template (and fmt)
// order them: numbers, strings and booleans (false first) by value, NaN
// before other floats; pointers and channels by address; structs and
// arrays element by element; interfaces nil first, then by the address of
// the dynamic type's descriptor, then by value. Keys that compare equal keep
// the map's iteration order (only NaNs can).
func sortedMap(m reflect.Value) []entry {
	if m.Len() == 0 {
		return nil
	}
	entries := make([]entry, 0, m.Len())
	for it := m.MapRange(); it.Next(); {
		entries = append(entries, entry{it.Key(), it.Value()})
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return compareKeys(a.key, b.key) })
	return entries
}

// compareKeys orders two map keys (see sortedMap); a and b have the same
// type except inside interfaces.
func compareKeys(a, b reflect.Value) int {
	if a.Type() != b.Type() {
		return -1 // cannot be ordered, but they are not equal
	}
	switch a.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cmp.Compare(a.Int(), b.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return cmp.Compare(a.Uint(), b.Uint())
	case reflect.String:
		return cmp.Compare(a.String(), b.String())
	case reflect.Float32, reflect.Float64:
		return cmp.Compare(a.Float(), b.Float())
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		if c := cmp.Compare(real(x), real(y)); c != 0 {
			return c
		}
		return cmp.Compare(imag(x), imag(y))
	case reflect.Bool:
		switch x, y := a.Bool(), b.Bool(); {
		case x == y:
			return 0
		case x:
			return 1
		}
		return -1
	case reflect.Pointer, reflect.UnsafePointer, reflect.Chan:
		return cmp.Compare(a.Pointer(), b.Pointer())
	case reflect.Struct:
		for i := range a.NumField() {
			if c := compareKeys(a.Field(i), b.Field(i)); c != 0 {
				return c
			}
		}
		return 0
	case reflect.Array:
		for i := range a.Len() {
			if c := compareKeys(a.Index(i), b.Index(i)); c != 0 {
				return c
			}
		}
		return 0
	case reflect.Interface:
		switch an, bn := a.IsNil(), b.IsNil(); {
		case an && bn:
			return 0
		case an:
			return -1
		case bn:
			return 1
		}
		ta, tb := reflect.ValueOf(a.Elem().Type()), reflect.ValueOf(b.Elem().Type())
		if c := cmp.Compare(ta.Pointer(), tb.Pointer()); c != 0 {
			return c
		}
		return compareKeys(a.Elem(), b.Elem())
	}
	panic("map key of unorderable type " + a.Type().String())
}
