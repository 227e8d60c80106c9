package otlp

import (
	"unicode/utf8"

	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
)

// The field writers of the OTLP encoders (metrics.go, resource.go). Each
// appends one field of a message and follows protobuf's own encoding
// rules, so the output decodes to the same message as, and is as long as,
// what google.golang.org/protobuf writes: a plain proto3 scalar or string
// that holds its zero value is left out; a oneof member or an optional
// field is written whenever it is set, zero or not. Fields are written in
// field-number order (as C++ protobuf does; the Go module writes oneof
// members last; decoders accept any order).
//
// Strings are written as valid UTF-8, which protobuf requires of a string
// field (a receiver rejects the whole request otherwise): each byte that is
// not part of a valid UTF-8 sequence is written as U+FFFD. Valid strings,
// which is all of them in practice, are copied as they are.

// appendString appends string field num unless s is empty.
func appendString(b []byte, num uint32, s string) []byte {
	if s == "" {
		return b
	}
	b = pbwire.AppendTag(b, num, pbwire.BytesType)
	return appendStringValue(b, s)
}

// appendStringValue appends s, length-prefixed, as valid UTF-8.
func appendStringValue(b []byte, s string) []byte {
	n, valid := utf8Len(s)
	return appendUTF8(b, s, n, valid)
}

// appendUTF8 appends s, length-prefixed, given what utf8Len said of it.
func appendUTF8(b []byte, s string, n int, valid bool) []byte {
	if valid {
		return pbwire.AppendString(b, s)
	}
	b = pbwire.AppendVarint(b, uint64(n))
	for _, r := range s { // an invalid byte ranges as utf8.RuneError
		b = utf8.AppendRune(b, r)
	}
	return b
}

// utf8Len is the length of s once written by appendStringValue, and
// whether s is valid UTF-8 (so written as it is).
func utf8Len(s string) (int, bool) {
	if utf8.ValidString(s) {
		return len(s), true
	}
	n := 0
	for _, r := range s {
		n += utf8.RuneLen(r)
	}
	return n, false
}

// appendFixed64 appends fixed64 field num unless v is 0.
func appendFixed64(b []byte, num uint32, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = pbwire.AppendTag(b, num, pbwire.Fixed64Type)
	return pbwire.AppendFixed64(b, v)
}

// appendDouble appends double field num, whatever its value: for oneof
// members and optional fields.
func appendDouble(b []byte, num uint32, v float64) []byte {
	b = pbwire.AppendTag(b, num, pbwire.Fixed64Type)
	return pbwire.AppendDouble(b, v)
}

// appendVarint appends varint field num (an enum, a bool, a uint) unless v
// is 0.
func appendVarint(b []byte, num uint32, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = pbwire.AppendTag(b, num, pbwire.VarintType)
	return pbwire.AppendVarint(b, v)
}

// sizeTag is the size of field num's key.
func sizeTag(num uint32) int { return pbwire.SizeVarint(uint64(num) << 3) }

// sizeBytes is the size of a length-delimited field's value of n bytes,
// its length prefix included.
func sizeBytes(n int) int { return pbwire.SizeVarint(uint64(n)) + n }
