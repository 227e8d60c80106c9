package logtemplate

import (
	"reflect"
	"text/template/parse"
)

// walkRange executes {{range}}. It iterates over arrays, slices, maps (in
// sorted key order), channels, integers (0 to n-1) and iterator functions;
// for each element it runs the list with dot set to the element. The else
// list runs when there is no element (also for nil).
//
// The pipeline's variables are declared (holding the range's operand)
// before the first iteration; each iteration sets them: a single variable
// to the element, two to the index (or key) and the element.
func (s *state) walkRange(dot reflect.Value, r *parse.RangeNode) (control, error) {
	mark := len(s.vars)
	defer s.popVars(mark)
	operand, err := s.evalPipeline(dot, r.Pipe)
	if err != nil {
		return flowNext, err
	}
	it := rangeIter{s: s, r: r, scope: len(s.vars)}
	val, _ := indirect(operand)
	ran := false
	switch val.Kind() {
	case reflect.Array, reflect.Slice:
		for i := 0; i < val.Len(); i++ {
			ran = true
			if it.step(intValue(i), val.Index(i)) {
				break
			}
		}
	case reflect.Map:
		for _, kv := range sortedMap(val) {
			ran = true
			if it.step(kv.key, kv.value) {
				break
			}
		}
	case reflect.Chan:
		if val.IsNil() {
			break
		}
		if val.Type().ChanDir() == reflect.SendDir {
			return flowNext, s.errorf(r, "range over send-only channel %v", val)
		}
		for i := 0; ; i++ {
			elem, ok := val.Recv()
			if !ok {
				break
			}
			ran = true
			if it.step(intValue(i), elem) {
				break
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if len(r.Pipe.Decl) > 1 {
			return flowNext, s.errorf(r, "can't use %v to iterate over more than one variable", val)
		}
		for v := range val.Seq() {
			ran = true
			if it.step(reflect.Value{}, v) {
				break
			}
		}
	case reflect.Func:
		switch t := val.Type(); {
		case t.CanSeq():
			if len(r.Pipe.Decl) > 1 {
				return flowNext, s.errorf(r, "can't use %v to iterate over more than one variable", val)
			}
			for v := range val.Seq() {
				ran = true
				if it.step(reflect.Value{}, v) {
					break
				}
			}
		case t.CanSeq2():
			for k, v := range val.Seq2() {
				ran = true
				// With one variable (or none), the key is the element.
				if len(r.Pipe.Decl) < 2 {
					k, v = v, k
				}
				if it.step(k, v) {
					break
				}
			}
		default:
			return flowNext, s.errorf(r, "range can't iterate over %v", val)
		}
	case reflect.Invalid:
		// nil: nothing to iterate over, which is not an error.
	default:
		return flowNext, s.errorf(r, "range can't iterate over %v", val)
	}
	if it.err != nil {
		return flowNext, it.err
	}
	if !ran && r.ElseList != nil {
		return s.walk(dot, r.ElseList)
	}
	return flowNext, nil
}

// rangeIter runs the body of one range for each element.
type rangeIter struct {
	s     *state
	r     *parse.RangeNode
	scope int // the variable stack's height inside the range
	err   error
}

// step runs one iteration and reports whether the range must stop (at
// {{break}} or an error, kept in it.err).
func (it *rangeIter) step(key, elem reflect.Value) (stop bool) {
	s, pipe := it.s, it.r.Pipe
	switch decl := pipe.Decl; {
	case len(decl) == 0:
	case pipe.IsAssign && len(decl) == 1:
		it.err = s.assignVar(decl[0], decl[0].Ident[0], elem)
	case pipe.IsAssign:
		if it.err = s.assignVar(decl[0], decl[0].Ident[0], key); it.err == nil {
			it.err = s.assignVar(decl[1], decl[1].Ident[0], elem)
		}
	default: // declared: the last variable gets the element, the one before it the key
		s.vars[it.scope-1].value = elem
		if len(decl) > 1 {
			s.vars[it.scope-2].value = key
		}
	}
	if it.err != nil {
		return true
	}
	ctl, err := s.walk(elem, it.r.List)
	s.popVars(it.scope)
	it.err = err
	return err != nil || ctl == flowBreak
}

// smallInts holds reflect.Values of the first ints, which index most
// ranges, so that indexing costs no allocation.
var smallInts = func() (v [256]reflect.Value) {
	for i := range v {
		v[i] = reflect.ValueOf(i)
	}
	return v
}()

func intValue(i int) reflect.Value {
	if i >= 0 && i < len(smallInts) {
		return smallInts[i]
	}
	return reflect.ValueOf(i)
}
