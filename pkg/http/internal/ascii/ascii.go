// Package ascii holds the ASCII-only case folding HTTP's tokens need:
// strings.EqualFold also folds Unicode, so "chunked" would match a string
// with a Kelvin sign (U+212A) in place of the k.
package ascii

// EqualFold reports whether s and t are equal, ASCII letters compared
// without case.
func EqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lower(t[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
