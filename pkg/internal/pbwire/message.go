package pbwire

import (
	"encoding/binary"
	"math"
)

// This file holds the writers that encode whole messages into a caller's
// buffer: nested messages framed without knowing their size in advance,
// packed repeated fixed-width fields, and the fixed-width scalars.

// SizeVarint is the number of bytes AppendVarint writes for v.
func SizeVarint(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendDouble appends v as a double's value: its IEEE 754 bits, 8 bytes
// little-endian.
func AppendDouble(b []byte, v float64) []byte { return AppendFixed64(b, math.Float64bits(v)) }

// AppendFixed32 appends v as 4 little-endian bytes (a fixed32's value).
func AppendFixed32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// BeginMessage appends the key of field num, of the bytes wire type, and
// one byte reserved for the length of the value that follows. The caller
// appends the value (a nested message, usually) and then calls EndMessage
// with the returned mark, which fills the length in.
//
// A value under 128 bytes needs nothing more; a longer one is moved right
// by the extra bytes of its length (one for up to 16 KiB), so a message is
// never encoded twice and no sizes are computed in advance. Pairs nest.
func BeginMessage(b []byte, num uint32) ([]byte, int) {
	b = append(AppendTag(b, num, BytesType), 0)
	return b, len(b)
}

// EndMessage writes the length of the value appended since BeginMessage
// returned mark, the length of the buffer it returned.
func EndMessage(b []byte, mark int) []byte {
	l := uint64(len(b) - mark)
	if l < 0x80 {
		b[mark-1] = byte(l)
		return b
	}
	extra := SizeVarint(l) - 1
	b = append(b, make([]byte, extra)...) // no allocation when capacity allows
	copy(b[mark+extra:], b[mark:len(b)-extra])
	binary.PutUvarint(b[mark-1:], l)
	return b
}

// AppendPackedFixed64 appends the repeated fixed64 field num, packed: one
// key, the length, then each value in 8 little-endian bytes. Nothing is
// written for no values, as protobuf does.
func AppendPackedFixed64(b []byte, num uint32, vs []uint64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = AppendTag(b, num, BytesType)
	b = AppendVarint(b, uint64(len(vs))*8)
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// AppendPackedDouble appends the repeated double field num, packed, as
// AppendPackedFixed64 does.
func AppendPackedDouble(b []byte, num uint32, vs []float64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = AppendTag(b, num, BytesType)
	b = AppendVarint(b, uint64(len(vs))*8)
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}
