package stdouttrace

import (
	"slices"
	"strconv"
	"strings"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// ocAttrs appends an OpenCensus attribute map as a JSON list sorted by key,
// or null when it has none, as the SDK keeps no attributes as a nil slice.
// With validate, attributes with an empty key are left out, as the SDK
// drops them from a span, and counted in dropped.
func (e *encoder) ocAttrs(m map[string]any, validate bool) (dropped int) {
	var buf [32]string
	keys := buf[:0]
	for k := range m {
		if validate && k == "" {
			dropped++
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		e.b = append(e.b, "null"...)
		return dropped
	}
	slices.Sort(keys)
	e.b = append(e.b, '[')
	for i, k := range keys {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.keyValue(k, m[k])
	}
	e.b = append(e.b, ']')
	return dropped
}

// keyValue appends one attribute.KeyValue: its key, then its value as the
// attribute.Value's MarshalJSON has it, {"Type":..,"Value":..}.
func (e *encoder) keyValue(key string, value any) {
	e.b = append(e.b, `{"Key":`...)
	e.b = appendString(e.b, key)
	switch v := value.(type) {
	case string:
		e.b = append(e.b, `,"Value":{"Type":"STRING","Value":`...)
		e.b = appendString(e.b, v)
	case bool:
		e.b = append(e.b, `,"Value":{"Type":"BOOL","Value":`...)
		e.b = strconv.AppendBool(e.b, v)
	case int64:
		e.b = append(e.b, `,"Value":{"Type":"INT64","Value":`...)
		e.b = strconv.AppendInt(e.b, v, 10)
	case float64:
		e.b = append(e.b, `,"Value":{"Type":"FLOAT64","Value":`...)
		var ok bool
		if e.b, ok = appendFloat(e.b, v); !ok {
			e.failed = true
		}
	default:
		e.b = append(e.b, `,"Value":{"Type":"STRING","Value":"unknown"`...)
	}
	e.b = append(e.b, "}}"...)
}

// attrSet appends metricdata attributes as the SDK marshals an
// attribute.Set: a list sorted by key, the last of duplicated keys winning;
// null when empty. A resource's set has no empty keys (validate drops them);
// a scope's keeps them.
func (e *encoder) attrSet(attrs []metricdata.Attr, validate bool) {
	if !isCanonical(attrs, validate) {
		attrs = canonical(attrs, validate)
	}
	if len(attrs) == 0 {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, a := range attrs {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if a.IsInt {
			e.keyValue(a.Key, a.Int)
		} else {
			e.keyValue(a.Key, a.Str)
		}
	}
	e.b = append(e.b, ']')
}

// isCanonical reports whether attrs is strictly sorted by key and, with
// validate, has no empty key, as NewResource's output is.
func isCanonical(attrs []metricdata.Attr, validate bool) bool {
	for i, a := range attrs {
		if validate && a.Key == "" || i > 0 && attrs[i-1].Key >= a.Key {
			return false
		}
	}
	return true
}

// canonical returns a copy of attrs sorted by key, keeping the last of
// duplicated keys and, with validate, dropping empty keys.
func canonical(attrs []metricdata.Attr, validate bool) []metricdata.Attr {
	out := slices.Clone(attrs)
	slices.SortStableFunc(out, func(a, b metricdata.Attr) int { return strings.Compare(a.Key, b.Key) })
	kept := out[:0]
	for _, a := range out {
		switch {
		case validate && a.Key == "":
		case len(kept) > 0 && kept[len(kept)-1].Key == a.Key:
			kept[len(kept)-1] = a
		default:
			kept = append(kept, a)
		}
	}
	return kept
}
