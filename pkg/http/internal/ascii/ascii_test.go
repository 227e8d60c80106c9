package ascii

import "testing"

func TestEqualFold(t *testing.T) {
	tests := []struct {
		s, t string
		want bool
	}{
		{"chunked", "chunked", true},
		{"CHUNKED", "chunked", true},
		{"Close", "cLOSE", true},
		{"", "", true},
		{"chunke", "chunked", false},
		{"chunked", "chunkeds", false},
		{"\u212Aeep", "keep", false}, // Kelvin sign: strings.EqualFold says true
		{"a[", "A{", false},          // '[' and '{' differ by the case bit, but are not letters
		{"@", "`", false},
	}
	for _, tc := range tests {
		if got := EqualFold(tc.s, tc.t); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.s, tc.t, got, tc.want)
		}
	}
}
