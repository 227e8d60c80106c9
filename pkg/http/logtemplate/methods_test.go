package logtemplate

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestUnsupportedMethods checks that calling a method outside the whitelist
// fails with ErrUnsupportedMethod and says what is supported, while
// text/template calls it (or fails too).
func TestUnsupportedMethods(t *testing.T) {
	cases := []struct {
		text    string
		message string // in the error
	}{
		{`{{.Request.FormValue "x"}}`, "cannot call method FormValue of *http.Request (supported: UserAgent, Referer, ProtoAtLeast, Cookies, Cookie, PathValue)"},
		{`{{.Request.Context}}`, "cannot call method Context of *http.Request"},
		{`{{.Request.Clone .Request.Context}}`, "cannot call method Clone of *http.Request"},
		{`{{.Request.CookiesNamed "session"}}`, "cannot call method CookiesNamed"},
		{`{{.NilRequest.BasicAuth}}`, "cannot call method BasicAuth of *http.Request"},
		{`{{.Request.Header.Set "a" "b"}}`, "cannot call method Set of http.Header (supported: Get, Values)"},
		{`{{.Header.Clone}}`, "cannot call method Clone of http.Header"},
		{`{{.Request.URL.JoinPath "x"}}`, "cannot call method JoinPath of *url.URL (supported: String, Redacted, EscapedPath"},
		{`{{.URL.MarshalBinary}}`, "cannot call method MarshalBinary of url.URL"},
		{`{{.Request.URL.Query.Add "a" "b"}}`, "cannot call method Add of url.Values (supported: Get, Has, Encode)"},
		{`{{.Time.Year}}`, "can't evaluate field Year in type time.Time: request log templates cannot call methods of time.Time"},
		{`{{.Val.String}}`, "can't evaluate field String in type logtemplate.valStringer"},
		{`{{with .Request}}{{.WithContext nil}}{{end}}`, "cannot call method WithContext"},
	}
	for _, c := range cases {
		tmpl, err := Parse("t", c.text, nil)
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		var buf bytes.Buffer
		err = tmpl.Execute(&buf, newTestData())
		if !errors.Is(err, ErrUnsupportedMethod) {
			t.Errorf("%q: error %v, want ErrUnsupportedMethod", c.text, err)
			continue
		}
		if !strings.Contains(err.Error(), c.message) {
			t.Errorf("%q: error %q, want it to contain %q", c.text, err, c.message)
		}
		var ume *UnsupportedMethodError
		if !errors.As(err, &ume) || ume.Name == "" || ume.Type == nil {
			t.Errorf("%q: error %v is not an *UnsupportedMethodError naming the method", c.text, err)
		}
		// text/template, by contrast, resolves the name as a method.
		std := runStd(c.text, nil, 0)
		if std.execErr != nil && !strings.Contains(std.execErr.Error(), "error calling") &&
			!strings.Contains(std.execErr.Error(), "return values") {
			t.Errorf("%q: text/template fails otherwise than calling the method: %v", c.text, std.execErr)
		}
	}
}

// TestNotMethods checks that a name that is not a method of a known type,
// or of a type without methods, gives text/template's error, not
// ErrUnsupportedMethod.
func TestNotMethods(t *testing.T) {
	for _, text := range []string{
		`{{.Request.Nope}}`,
		`{{.Response.Nope}}`,
		`{{.Request.URL.Nope}}`,
		`{{.Str.Nope}}`,
		`{{range .URLMap}}{{.String}}{{end}}`, // url.URL, not addressable: String is not in its method set
	} {
		tmpl, err := Parse("t", text, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = tmpl.Execute(new(bytes.Buffer), newTestData())
		if err == nil || errors.Is(err, ErrUnsupportedMethod) || !strings.Contains(err.Error(), "can't evaluate field") {
			t.Errorf("%q: error %v, want can't evaluate field", text, err)
		}
	}
}
