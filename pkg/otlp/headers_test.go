package otlp

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Header
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "api-key=secret", want: []Header{{"api-key", "secret"}}},
		{name: "two trimmed", in: " a = 1 , b=2", want: []Header{{"a", "1"}, {"b", "2"}}},
		{name: "percent-decoded then trimmed", in: "Authorization=Basic%20dXNlcjpwYXNz%20", want: []Header{{"Authorization", "Basic dXNlcjpwYXNz"}}},
		{name: "value with =", in: "k=a=b", want: []Header{{"k", "a=b"}}},
		{name: "empty value", in: "k=", want: []Header{{"k", ""}}},
		{name: "plus is not a space", in: "k=a+b", want: []Header{{"k", "a+b"}}},
		{name: "trailing and blank entries skipped", in: "a=1,, ,b=2,", want: []Header{{"a", "1"}, {"b", "2"}}},
		{name: "later duplicate wins, first position kept", in: "a=1,B=2,A=3", want: []Header{{"a", "3"}, {"B", "2"}}},
		{name: "token punctuation", in: "x!#$%&'*+-.^_`|~=v", want: []Header{{"x!#$%&'*+-.^_`|~", "v"}}},
		{name: "no equals", in: "a=1,secretvalue", wantErr: `entry 2 has no "="`},
		{name: "empty key", in: "=v", wantErr: "entry 1 has an invalid key"},
		{name: "space in key", in: "a b=v", wantErr: "entry 1 has an invalid key"},
		{name: "non-ASCII key", in: "ké=v", wantErr: "entry 1 has an invalid key"},
		{name: "bad escape", in: "k=%zz", wantErr: "entry 1 has an invalid percent-encoding in its value"},
		{name: "control character", in: "k=a%0Ab", wantErr: "entry 1 has a control character in its value"},
		{name: "DEL", in: "k=a%7Fb", wantErr: "entry 1 has a control character in its value"},
		{name: "binary value", in: "trace-BIN=%00%ff", want: []Header{{"trace-BIN", "\x00\xff"}}},
		{name: "tab allowed", in: "k=a%09b", want: []Header{{"k", "a\tb"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeaders(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseHeaders(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHeaders(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseHeaders(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactedHeaders(t *testing.T) {
	got := redactedHeaders([]Header{{"Authorization", "Bearer xyz"}, {"x-tenant", "t1"}})
	if want := "[Authorization=<redacted> x-tenant=<redacted>]"; got != want {
		t.Errorf("redactedHeaders = %q, want %q", got, want)
	}
}

// FuzzParseHeaders checks the parser against the OpenTelemetry exporters'
// reading of the variable (split on ",", cut at "=", trim the key,
// PathUnescape then trim the value), and that what it accepts is valid on
// the wire.
func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{"", "a=b", " a = b ,c=d", "k=%20v%20", "k=%zz", "a", "=b", "a=1,,b=2", "k=a%0Ab", "A=1,a=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseHeaders(s)
		if err != nil {
			return
		}
		want := map[string]string{}
		for _, entry := range strings.Split(s, ",") {
			if strings.TrimSpace(entry) == "" {
				continue
			}
			k, v, ok := strings.Cut(entry, "=")
			if !ok {
				t.Fatalf("accepted entry %q without =", entry)
			}
			v, err := url.PathUnescape(v)
			if err != nil {
				t.Fatalf("accepted bad escape in %q", entry)
			}
			want[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		if len(got) != len(want) {
			t.Fatalf("ParseHeaders(%q) = %q, want the keys of %q", s, got, want)
		}
		for _, h := range got {
			if want[strings.ToLower(h.Name)] != h.Value {
				t.Errorf("ParseHeaders(%q): %q = %q, want %q", s, h.Name, h.Value, want[strings.ToLower(h.Name)])
			}
			if !isToken(h.Name) || (!validHeaderValue(h.Value) && !isBinaryKey(h.Name)) {
				t.Errorf("ParseHeaders(%q) accepted %q: %q", s, h.Name, h.Value)
			}
		}
	})
}
