package h1server

import (
	"net/url"
	"reflect"
	"testing"
)

// TestParseTarget: the targets parseTarget takes give exactly
// url.ParseRequestURI's URL; the others are left to ParseRequestURI.
func TestParseTarget(t *testing.T) {
	tests := []struct {
		target string
		fast   bool
	}{
		{"/", true},
		{"/a/b.c-d_e~f", true},
		{"/$&+,:;=@", true},
		{"/?", true},          // ForceQuery
		{"/a?b=c&d", true},    // raw query
		{"/a?b?c", true},      // a second '?' is the query's
		{"/a??", true},        // not ForceQuery: two '?'
		{"/a?x#y%zz<>", true}, // the query is taken raw
		{"//host/path", true}, // no authority in a request's target
		{"/a%20b", false},     // escapes: Path unescaped
		{"/a%zz", false},      // a bad escape: an error
		{"/a!b", false},       // escaped by EscapedPath: RawPath set
		{"/a#b", false},       // '#' in the path
		{"/a b", false},       // a space
		{"/a?b c", false},     // a space in the query
		{"/a?b\x7f", false},   // a control byte
		{"*", false},          // not origin-form
		{"http://h/p", false}, // absolute-form
		{"", false},
	}
	for _, tc := range tests {
		var got url.URL
		fast := parseTarget(tc.target, &got)
		if fast != tc.fast {
			t.Errorf("parseTarget(%q) = %v, want %v", tc.target, fast, tc.fast)
		}
		if !fast {
			if got != (url.URL{}) {
				t.Errorf("parseTarget(%q) refused but set %#v", tc.target, got)
			}
			continue
		}
		want, err := url.ParseRequestURI(tc.target)
		if err != nil || !reflect.DeepEqual(got, *want) {
			t.Errorf("parseTarget(%q) = %#v; ParseRequestURI: %#v, %v", tc.target, got, want, err)
		}
	}
}
