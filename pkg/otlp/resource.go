package otlp

import (
	"math"

	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// The messages every OTLP signal shares (opentelemetry/proto/common/v1 and
// resource/v1): Resource, InstrumentationScope, KeyValue and its AnyValue.
// Each writer appends one field, numbered by the caller, that holds the
// message, so the same functions serve ResourceMetrics and ResourceSpans
// (resource is field 1 of both), ScopeMetrics and ScopeSpans (scope, field
// 1), and every attributes field (Metric points: 7 or 9; Span: 9; events
// and links: 3 and 4).

// Field numbers of common/v1 and resource/v1.
const (
	resourceAttributes = 1 // Resource.attributes

	scopeName    = 1 // InstrumentationScope.name
	scopeVersion = 2 // InstrumentationScope.version

	keyValueKey   = 1 // KeyValue.key
	keyValueValue = 2 // KeyValue.value

	anyString = 1 // AnyValue.string_value
	anyBool   = 2 // AnyValue.bool_value
	anyInt    = 3 // AnyValue.int_value
	anyDouble = 4 // AnyValue.double_value
)

// AppendResource appends field num holding a Resource with attrs as its
// attributes, in the order given. The field is written even when attrs is
// empty.
func AppendResource(b []byte, num uint32, attrs []metricdata.Attr) []byte {
	b, mark := pbwire.BeginMessage(b, num)
	b = AppendAttrs(b, resourceAttributes, attrs)
	return pbwire.EndMessage(b, mark)
}

// AppendScope appends field num holding an InstrumentationScope with the
// name and version given (each left out when empty). The field is always
// written.
func AppendScope(b []byte, num uint32, name, version string) []byte {
	b, mark := pbwire.BeginMessage(b, num)
	b = appendString(b, scopeName, name)
	b = appendString(b, scopeVersion, version)
	return pbwire.EndMessage(b, mark)
}

// AppendAttrs appends attrs as the repeated KeyValue field num, in the
// order given: a string value as string_value, an integer (IsInt) as
// int_value.
func AppendAttrs(b []byte, num uint32, attrs []metricdata.Attr) []byte {
	for i := range attrs {
		a := &attrs[i]
		if a.IsInt {
			b = AppendIntKeyValue(b, num, a.Key, a.Int)
		} else {
			b = AppendStringKeyValue(b, num, a.Key, a.Str)
		}
	}
	return b
}

// AppendStringKeyValue appends field num holding the KeyValue key, with
// value as its string_value (written even when empty).
func AppendStringKeyValue(b []byte, num uint32, key, value string) []byte {
	n, valid := utf8Len(value)
	b = appendKeyValueHead(b, num, key, sizeTag(anyString)+sizeBytes(n))
	b = pbwire.AppendTag(b, anyString, pbwire.BytesType)
	return appendUTF8(b, value, n, valid)
}

// AppendIntKeyValue appends field num holding the KeyValue key, with value
// as its int_value.
func AppendIntKeyValue(b []byte, num uint32, key string, value int64) []byte {
	v := uint64(value)
	b = appendKeyValueHead(b, num, key, sizeTag(anyInt)+pbwire.SizeVarint(v))
	b = pbwire.AppendTag(b, anyInt, pbwire.VarintType)
	return pbwire.AppendVarint(b, v)
}

// AppendBoolKeyValue appends field num holding the KeyValue key, with
// value as its bool_value.
func AppendBoolKeyValue(b []byte, num uint32, key string, value bool) []byte {
	var v uint64
	if value {
		v = 1
	}
	b = appendKeyValueHead(b, num, key, sizeTag(anyBool)+1)
	b = pbwire.AppendTag(b, anyBool, pbwire.VarintType)
	return pbwire.AppendVarint(b, v)
}

// AppendDoubleKeyValue appends field num holding the KeyValue key, with
// value as its double_value.
func AppendDoubleKeyValue(b []byte, num uint32, key string, value float64) []byte {
	b = appendKeyValueHead(b, num, key, sizeTag(anyDouble)+8)
	b = pbwire.AppendTag(b, anyDouble, pbwire.Fixed64Type)
	return pbwire.AppendFixed64(b, math.Float64bits(value))
}

// appendKeyValueHead appends everything of a KeyValue field but the body
// of its AnyValue, which is anySize bytes long: the field's key and
// length, the key field, and the value field's key and length. Sizes are
// exact, so nothing written is moved afterwards.
func appendKeyValueHead(b []byte, num uint32, key string, anySize int) []byte {
	keyLen, keyValid := utf8Len(key)
	kvSize := sizeTag(keyValueValue) + sizeBytes(anySize)
	if key != "" {
		kvSize += sizeTag(keyValueKey) + sizeBytes(keyLen)
	}
	b = pbwire.AppendTag(b, num, pbwire.BytesType)
	b = pbwire.AppendVarint(b, uint64(kvSize))
	if key != "" {
		b = pbwire.AppendTag(b, keyValueKey, pbwire.BytesType)
		b = appendUTF8(b, key, keyLen, keyValid)
	}
	b = pbwire.AppendTag(b, keyValueValue, pbwire.BytesType)
	return pbwire.AppendVarint(b, uint64(anySize))
}
