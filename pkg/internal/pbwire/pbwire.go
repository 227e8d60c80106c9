// Package pbwire encodes and decodes the protocol buffer wire format
// (https://protobuf.dev/programming-guides/encoding/) for the two messages
// queue-proxy speaks: the autoscaler Stat it serves and the gRPC health
// check it probes with.
//
// google.golang.org/protobuf/encoding/protowire does the same, but linking
// it runs google.golang.org/protobuf/internal/detrand's initialisation,
// which opens and reads the executable at every start (0.12 ms of a
// 5 ms start). This package needs only encoding/binary.
package pbwire

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Type is a wire type.
type Type uint8

// Wire types.
const (
	VarintType     Type = 0
	Fixed64Type    Type = 1
	BytesType      Type = 2
	StartGroupType Type = 3 // deprecated; skipped, never written
	EndGroupType   Type = 4
	Fixed32Type    Type = 5
)

// maxGroupDepth bounds the nesting of groups being skipped (protobuf's own
// default recursion limit).
const maxGroupDepth = 10000

// MaxFieldNumber is the largest valid field number.
const MaxFieldNumber = 1<<29 - 1

// Errors of the Consume functions.
var (
	ErrTruncated   = errors.New("protobuf: unexpected end of message")
	ErrOverflow    = errors.New("protobuf: varint overflows 64 bits")
	ErrFieldNumber = errors.New("protobuf: invalid field number")
	ErrGroup       = errors.New("protobuf: mismatched or unexpected end of group")
	ErrDepth       = errors.New("protobuf: groups nested too deeply")
)

// ErrWireType reports an invalid wire type (6 or 7).
type ErrWireType Type

func (e ErrWireType) Error() string {
	return "protobuf: unsupported wire type " + strconv.Itoa(int(e))
}

// AppendTag appends a field's key: its number and wire type.
func AppendTag(b []byte, num uint32, typ Type) []byte {
	return binary.AppendUvarint(b, uint64(num)<<3|uint64(typ))
}

// AppendVarint appends v as a varint.
func AppendVarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendString appends s, length-prefixed (a bytes or string field's value).
func AppendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// AppendFixed64 appends v as 8 little-endian bytes (a double's bits, a
// fixed64).
func AppendFixed64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// ConsumeVarint decodes a varint at the start of b and returns it and its
// length.
func ConsumeVarint(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0, ErrTruncated
	case n < 0:
		return 0, 0, ErrOverflow
	}
	return v, n, nil
}

// ConsumeTag decodes a field's key at the start of b and returns its field
// number, wire type and length. A field number of 0 or above MaxFieldNumber
// is an error.
func ConsumeTag(b []byte) (uint32, Type, int, error) {
	v, n, err := ConsumeVarint(b)
	if err != nil {
		return 0, 0, 0, err
	}
	num := v >> 3
	if num == 0 || num > MaxFieldNumber {
		return 0, 0, 0, ErrFieldNumber
	}
	return uint32(num), Type(v & 7), n, nil
}

// ConsumeFieldValue returns the length of the value of field num, of wire
// type typ, at the start of b, to skip it. A group's value runs to its
// matching end-group key, included.
func ConsumeFieldValue(num uint32, typ Type, b []byte) (int, error) {
	return consumeFieldValue(num, typ, b, 0)
}

func consumeFieldValue(num uint32, typ Type, b []byte, depth int) (int, error) {
	switch typ {
	case VarintType:
		_, n, err := ConsumeVarint(b)
		return n, err
	case Fixed64Type:
		if len(b) < 8 {
			return 0, ErrTruncated
		}
		return 8, nil
	case Fixed32Type:
		if len(b) < 4 {
			return 0, ErrTruncated
		}
		return 4, nil
	case BytesType:
		l, n, err := ConsumeVarint(b)
		if err != nil {
			return 0, err
		}
		if l > uint64(len(b)-n) {
			return 0, ErrTruncated
		}
		return n + int(l), nil
	case StartGroupType:
		if depth >= maxGroupDepth {
			return 0, ErrDepth
		}
		n := 0
		for {
			fnum, ftyp, l, err := ConsumeTag(b[n:])
			if err != nil {
				return 0, err
			}
			n += l
			if ftyp == EndGroupType {
				if fnum != num {
					return 0, ErrGroup
				}
				return n, nil
			}
			if l, err = consumeFieldValue(fnum, ftyp, b[n:], depth+1); err != nil {
				return 0, err
			}
			n += l
		}
	case EndGroupType:
		return 0, ErrGroup
	}
	return 0, ErrWireType(typ)
}
