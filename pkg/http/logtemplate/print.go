package logtemplate

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/template/parse"
	"unicode"
	"unicode/utf8"
)

// print writes v as an action prints it: as fmt.Print does, after following
// pointers, using a String or Error method of the value or of its address;
// an invalid value prints as <no value>; channels and functions cannot be
// printed.
func (s *state) print(n parse.Node, v reflect.Value) error {
	if v.Kind() == reflect.Pointer {
		v, _ = indirect(v)
	}
	if done, err := s.printBasic(v); done {
		return err
	}
	x, ok := printable(v)
	if !ok {
		return s.errorf(n, "can't print %s of type %s", n, v.Type())
	}
	_, err := fmt.Fprint(s.w, x)
	return err
}

// printBasic writes v if its type is a predeclared type fmt prints
// without looking for methods (those have none), and reports whether it did.
func (s *state) printBasic(v reflect.Value) (bool, error) {
	if !v.IsValid() {
		return false, nil
	}
	k := v.Kind()
	if int(k) >= len(basicTypes) || basicTypes[k] == nil || v.Type() != basicTypes[k] {
		return false, nil
	}
	var err error
	switch {
	case k == reflect.String:
		_, err = io.WriteString(s.w, v.String())
	case k == reflect.Bool:
		_, err = s.w.Write(strconv.AppendBool(s.buf[:0], v.Bool()))
	case isIntKind(k):
		_, err = s.w.Write(strconv.AppendInt(s.buf[:0], v.Int(), 10))
	case k == reflect.Uintptr:
		return false, nil
	case isUintKind(k):
		_, err = s.w.Write(strconv.AppendUint(s.buf[:0], v.Uint(), 10))
	case k == reflect.Float64:
		_, err = s.w.Write(strconv.AppendFloat(s.buf[:0], v.Float(), 'g', -1, 64))
	case k == reflect.Float32:
		_, err = s.w.Write(strconv.AppendFloat(s.buf[:0], v.Float(), 'g', -1, 32))
	default:
		return false, nil
	}
	return true, err
}

// basicTypes holds, by kind, the predeclared type of that kind.
var basicTypes = [...]reflect.Type{
	reflect.Bool:    reflect.TypeFor[bool](),
	reflect.Int:     reflect.TypeFor[int](),
	reflect.Int8:    reflect.TypeFor[int8](),
	reflect.Int16:   reflect.TypeFor[int16](),
	reflect.Int32:   reflect.TypeFor[int32](),
	reflect.Int64:   reflect.TypeFor[int64](),
	reflect.Uint:    reflect.TypeFor[uint](),
	reflect.Uint8:   reflect.TypeFor[uint8](),
	reflect.Uint16:  reflect.TypeFor[uint16](),
	reflect.Uint32:  reflect.TypeFor[uint32](),
	reflect.Uint64:  reflect.TypeFor[uint64](),
	reflect.Float32: reflect.TypeFor[float32](),
	reflect.Float64: reflect.TypeFor[float64](),
	reflect.String:  reflect.TypeFor[string](),
}

// printable returns what fmt must print for v (see print), or false if v
// cannot be printed.
func printable(v reflect.Value) (any, bool) {
	if v.Kind() == reflect.Pointer {
		v, _ = indirect(v) // a nil pointer stays: fmt prints <nil>
	}
	if !v.IsValid() {
		return "<no value>", true
	}
	if t := v.Type(); !t.Implements(errorType) && !t.Implements(stringerType) {
		pt := reflect.PointerTo(t)
		switch {
		case v.CanAddr() && (pt.Implements(errorType) || pt.Implements(stringerType)):
			v = v.Addr()
		case v.Kind() == reflect.Chan || v.Kind() == reflect.Func:
			return nil, false
		}
	}
	if !v.CanInterface() {
		return nil, false // read through an unexported embedded field
	}
	return v.Interface(), true
}

// escapeHTML escapes s for HTML text and attributes: the characters
// ' " & < > become entities, NUL becomes U+FFFD.
func escapeHTML(s string) string {
	if !strings.ContainsAny(s, "'\"&<>\000") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case 0:
			b.WriteString("\uFFFD")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeJS escapes s for a JavaScript string literal as text/template's js
// does: \\ \' \" for backslash and quotes; \u003C \u003E \u0026 \u003D for
// < > & =; \u00XX for control characters; \uXXXX (or more hex digits) for
// other non-printable runes. Printable runes and invalid UTF-8 bytes stay.
func escapeJS(s string) string {
	i := strings.IndexFunc(s, jsNeedsEscape)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '\\':
				b.WriteString(`\\`)
			case '\'':
				b.WriteString(`\'`)
			case '"':
				b.WriteString(`\"`)
			case '<', '>', '&', '=':
				fmt.Fprintf(&b, `\u%04X`, c)
			default:
				if c < ' ' {
					fmt.Fprintf(&b, `\u%04X`, c)
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsPrint(r) {
			b.WriteString(s[i : i+size])
		} else {
			fmt.Fprintf(&b, `\u%04X`, r)
		}
		i += size
	}
	return b.String()
}

func jsNeedsEscape(r rune) bool {
	switch r {
	case '\\', '\'', '"', '<', '>', '&', '=':
		return true
	}
	return r < ' ' || r >= utf8.RuneSelf
}
