package stdouttrace

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// jsonEncoded is what encoding/json's Encoder (HTML escaping on, as the
// SDK's exporter uses it) writes for v, without the newline.
func jsonEncoded(t *testing.T, v any) string {
	t.Helper()
	var sb strings.Builder
	if err := json.NewEncoder(&sb).Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

// stringInputs are strings over every byte value, the escaped runes and
// their neighbours, and invalid and truncated UTF-8.
func stringInputs() []string {
	in := []string{"", "plain", "<>&", `"\`, "\u2027\u2028\u2029\u202a", "\x7f\x80\xbf\xc0\xc1\xf5\xff",
		"\xe2\x80", "\xe2\x80\xa8", "\xed\xa0\x80", "\xf0\x9f\x98", "\xf0\x9f\x98\x80", "a\xe2\x80=b", "\U0010ffff\xf4\x90\x80\x80"}
	for c := range 256 {
		in = append(in, string([]byte{'a', byte(c), 'z'}))
	}
	for _, r := range []rune{0x7f, 0x80, 0x7ff, 0x800, 0xfffd, 0xffff, 0x10000, utf8.MaxRune} {
		in = append(in, "x"+string(r)+"y")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		in = append(in, string(b))
	}
	return in
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range stringInputs() {
		if got, want := string(appendString(nil, s)), jsonEncoded(t, s); got != want {
			t.Errorf("appendString(%q) = %s, encoding/json: %s", s, got, want)
		}
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	in := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 1e-7, 9.999999e-7, 1e20, 1e21, 1e21 - 65536, 123456789.125,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-100, 1e100, 2.5e-10, math.Pi}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		in = append(in, math.Float64frombits(rng.Uint64()))
	}
	for _, f := range in {
		got, ok := appendFloat(nil, f)
		want, err := json.Marshal(f)
		if ok != (err == nil) {
			t.Fatalf("appendFloat(%v) ok=%v, encoding/json error %v", f, ok, err)
		}
		if string(got) != string(want) {
			t.Errorf("appendFloat(%v) = %s, encoding/json: %s", f, got, want)
		}
	}
}

func TestAppendTimeMatchesEncodingJSON(t *testing.T) {
	base := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	for _, tm := range []time.Time{
		{}, base, base.Round(time.Second), base.In(time.FixedZone("", -(3*3600 + 30*60))),
		base.In(time.FixedZone("", 23*3600+59*60+59)), base.In(time.FixedZone("", -24*3600)),
		base.In(time.FixedZone("", 24*3600)), base.In(time.FixedZone("", 45)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Now(),
	} {
		got, ok := appendTime(nil, tm)
		want, err := tm.MarshalJSON()
		if ok != (err == nil) {
			t.Fatalf("appendTime(%v) ok=%v, MarshalJSON error %v", tm, ok, err)
		}
		if ok && string(got) != string(want) {
			t.Errorf("appendTime(%v) = %s, MarshalJSON: %s", tm, got, want)
		}
	}
}
