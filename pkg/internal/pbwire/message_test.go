package pbwire

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestSizeVarint(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		if got, want := SizeVarint(v), protowire.SizeVarint(v); got != want {
			t.Errorf("SizeVarint(%d) = %d, want %d", v, got, want)
		}
	}
}

func TestAppendScalars(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"double", AppendDouble([]byte{7}, -2.5), protowire.AppendFixed64([]byte{7}, math.Float64bits(-2.5))},
		{"double NaN", AppendDouble(nil, math.NaN()), protowire.AppendFixed64(nil, math.Float64bits(math.NaN()))},
		{"double -0", AppendDouble(nil, math.Copysign(0, -1)), protowire.AppendFixed64(nil, 1<<63)},
		{"fixed32", AppendFixed32([]byte{7}, 0xdeadbeef), protowire.AppendFixed32([]byte{7}, 0xdeadbeef)},
		{"packed fixed64", AppendPackedFixed64([]byte{7}, 6, []uint64{0, 1, math.MaxUint64}), packedWant([]byte{7}, 6, []uint64{0, 1, math.MaxUint64})},
		{"packed fixed64, none", AppendPackedFixed64([]byte{7}, 6, nil), []byte{7}},
		{"packed double", AppendPackedDouble(nil, 7, []float64{0.005, math.Inf(1)}), packedWant(nil, 7, []uint64{math.Float64bits(0.005), math.Float64bits(math.Inf(1))})},
		{"packed double, none", AppendPackedDouble(nil, 7, []float64{}), nil},
		{"packed fixed64, 16 values (length 128)", AppendPackedFixed64(nil, 1, make([]uint64, 16)), packedWant(nil, 1, make([]uint64, 16))},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: %x, want %x", tc.name, tc.got, tc.want)
		}
	}
}

// packedWant is protowire's encoding of a packed repeated fixed64 field.
func packedWant(b []byte, num protowire.Number, vs []uint64) []byte {
	var body []byte
	for _, v := range vs {
		body = protowire.AppendFixed64(body, v)
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

func TestMessageLengths(t *testing.T) {
	// Every length at which the prefix grows a byte, and its neighbours.
	for _, n := range []int{0, 1, 127, 128, 129, 16383, 16384, 1<<21 - 1, 1 << 21} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7) // a shift by any amount changes the bytes
		}
		b, mark := BeginMessage([]byte("prefix"), 3)
		b = append(b, body...)
		got := EndMessage(b, mark)
		want := protowire.AppendBytes(protowire.AppendTag([]byte("prefix"), 3, protowire.BytesType), body)
		if !bytes.Equal(got, want) {
			t.Errorf("body of %d bytes: encoding differs from protowire (len %d, want %d)", n, len(got), len(want))
		}
	}
}

func TestMessageNesting(t *testing.T) {
	// outer{ 1: inner{ 2: 200 bytes }, 3: "x" } with a large field number.
	b, outer := BeginMessage(nil, MaxFieldNumber)
	b, inner := BeginMessage(b, 1)
	b = append(b, bytes.Repeat([]byte{1}, 200)...)
	b = EndMessage(b, inner)
	b = AppendTag(b, 3, BytesType)
	b = AppendString(b, "x")
	b = EndMessage(b, outer)

	in := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), bytes.Repeat([]byte{1}, 200))
	in = protowire.AppendString(protowire.AppendTag(in, 3, protowire.BytesType), "x")
	want := protowire.AppendBytes(protowire.AppendTag(nil, MaxFieldNumber, protowire.BytesType), in)
	if !bytes.Equal(b, want) {
		t.Errorf("nested:\n got %x\nwant %x", b, want)
	}
}

func TestEndMessageNoAllocWithCapacity(t *testing.T) {
	buf := make([]byte, 0, 1<<16)
	body := make([]byte, 20000)
	allocs := testing.AllocsPerRun(100, func() {
		b, mark := BeginMessage(buf[:0], 1)
		b = append(b, body...)
		b = EndMessage(b, mark)
		if len(b) != 1+3+len(body) {
			t.Fatalf("length %d", len(b))
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

// FuzzMessageNesting: a tree of messages described by the input, framed
// with BeginMessage/EndMessage, is what protowire builds bottom-up.
func FuzzMessageNesting(f *testing.F) {
	for _, s := range [][]byte{nil, {0}, {1, 200, 2}, {1, 1, 1, 255, 255, 2, 2, 2}, bytes.Repeat([]byte{1, 255, 250}, 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, _ := encodeTree(nil, in, 0)
		want, _ := protowireTree(in, 0)
		if !bytes.Equal(got, want) {
			t.Fatalf("encodings differ for %x", in)
		}
	})
}

// encodeTree and protowireTree read the same program from in: byte 0 ends
// the current message, 1 opens a nested one, any other byte v appends a
// string field of v*3 bytes. They return the rest of the program.
func encodeTree(b, in []byte, depth int) ([]byte, []byte) {
	for len(in) > 0 {
		op := in[0]
		in = in[1:]
		switch {
		case op == 0:
			return b, in
		case op == 1 && depth < 100:
			var mark int
			b, mark = BeginMessage(b, uint32(depth+1))
			b, in = encodeTree(b, in, depth+1)
			b = EndMessage(b, mark)
		default:
			b = AppendTag(b, 2, BytesType)
			b = AppendString(b, string(bytes.Repeat([]byte{op}, int(op)*3)))
		}
	}
	return b, in
}

func protowireTree(in []byte, depth int) ([]byte, []byte) {
	var b []byte
	for len(in) > 0 {
		op := in[0]
		in = in[1:]
		switch {
		case op == 0:
			return b, in
		case op == 1 && depth < 100:
			var sub []byte
			sub, in = protowireTree(in, depth+1)
			b = protowire.AppendTag(b, protowire.Number(depth+1), protowire.BytesType)
			b = protowire.AppendBytes(b, sub)
		default:
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendBytes(b, bytes.Repeat([]byte{op}, int(op)*3))
		}
	}
	return b, in
}
