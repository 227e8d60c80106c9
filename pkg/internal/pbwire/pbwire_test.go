package pbwire

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"tag 1 bytes", AppendTag(nil, 1, BytesType), protowire.AppendTag(nil, 1, protowire.BytesType)},
		{"tag max fixed64", AppendTag(nil, MaxFieldNumber, Fixed64Type), protowire.AppendTag(nil, MaxFieldNumber, protowire.Fixed64Type)},
		{"string", AppendString([]byte{9}, "pod-name"), protowire.AppendString([]byte{9}, "pod-name")},
		{"long string", AppendString(nil, string(make([]byte, 300))), protowire.AppendString(nil, string(make([]byte, 300)))},
		{"fixed64", AppendFixed64(nil, math.Float64bits(1.5)), protowire.AppendFixed64(nil, math.Float64bits(1.5))},
		{"varint", AppendVarint(nil, math.MaxUint64), protowire.AppendVarint(nil, math.MaxUint64)},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: %x, want %x", tc.name, tc.got, tc.want)
		}
	}
}

func TestConsumeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"truncated varint", second(ConsumeVarint([]byte{0x80})), ErrTruncated},
		{"overflowing varint", second(ConsumeVarint(bytes.Repeat([]byte{0xff}, 11))), ErrOverflow},
		{"field number 0", fourth(ConsumeTag([]byte{0x02})), ErrFieldNumber},
		{"truncated bytes", second2(ConsumeFieldValue(1, BytesType, []byte{5, 1, 2})), ErrTruncated},
		{"truncated fixed32", second2(ConsumeFieldValue(1, Fixed32Type, []byte{1, 2, 3})), ErrTruncated},
		{"unterminated group", second2(ConsumeFieldValue(1, StartGroupType, []byte{0x08, 0x01})), ErrTruncated},
		{"group ended by another field's end", second2(ConsumeFieldValue(1, StartGroupType, []byte{0x14})), ErrGroup},
		{"stray end of group", second2(ConsumeFieldValue(1, EndGroupType, nil)), ErrGroup},
		{"wire type 6", second2(ConsumeFieldValue(1, 6, []byte{0})), ErrWireType(6)},
		{"groups too deep", second2(ConsumeFieldValue(1, StartGroupType, bytes.Repeat([]byte{0x0b}, maxGroupDepth+1))), ErrDepth},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func second(_ uint64, _ int, err error) error         { return err }
func second2(_ int, err error) error                  { return err }
func fourth(_ uint32, _ Type, _ int, err error) error { return err }

// FuzzConsumeMatchesProtowire: on any input, decoding a key and skipping its
// value agrees with protowire plus its callers' field-number check.
func FuzzConsumeMatchesProtowire(f *testing.F) {
	for _, s := range [][]byte{{0x08, 0x01}, {0x0a, 0x03, 'a', 'b', 'c'}, {0x11, 1, 2, 3, 4, 5, 6, 7, 8}, {0x1d, 1, 2, 3, 4}, {0x80}, {0x0b}, {0x00}, bytes.Repeat([]byte{0xff}, 11)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		num, typ, n, err := ConsumeTag(b)
		pnum, ptyp, pn := protowire.ConsumeTag(b)
		if pn >= 0 && !pnum.IsValid() {
			pn = -1 // protowire leaves the range check to its callers
		}
		if (err != nil) != (pn < 0) {
			t.Fatalf("ConsumeTag(%x): err %v, protowire length %d", b, err, pn)
		}
		if err != nil {
			return
		}
		if num != uint32(pnum) || typ != Type(ptyp) || n != pn {
			t.Fatalf("ConsumeTag(%x) = %d %d %d, protowire %d %d %d", b, num, typ, n, pnum, ptyp, pn)
		}
		l, err := ConsumeFieldValue(num, typ, b[n:])
		pl := protowire.ConsumeFieldValue(pnum, ptyp, b[n:])
		if (err != nil) != (pl < 0) || (err == nil && l != pl) {
			t.Fatalf("ConsumeFieldValue(%d, %x) = %d, %v; protowire %d", typ, b[n:], l, err, pl)
		}
	})
}
