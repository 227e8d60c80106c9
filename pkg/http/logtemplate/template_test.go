package logtemplate

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"text/template"
)

// Outcomes a differential case expects of both engines.
const (
	ok        = iota // executes successfully
	execFails        // parses, fails executing
	parseFails
)

// differentialCases are executed by text/template and by this package on
// the same (freshly built) data; outputs must be identical, and both must
// have the expected outcome.
var differentialCases = []struct {
	text string
	want int
}{
	// Text, comments, trim markers.
	{"plain text", ok},
	{"", ok},
	{"{{/* comment */}}x", ok},
	{"a  {{- 1 -}}  b", ok},
	{"a {{- /* c */ -}}\n b", ok},
	{"{{define \"t\"}}redefined top{{end}}", ok},

	// Fields, maps, pointers, interfaces.
	{"{{.Request.Method}} {{.Request.URL.Path}} {{.Request.Host}} {{.Request.RemoteAddr}} {{.Request.ContentLength}}", ok},
	{"{{.Request.Header}}", ok},
	{"{{.Request.URL}}|{{.Request.URL.User}}|{{.Request.URL.RawQuery}}", ok},
	{"{{.Response}} {{.Revision}} {{.Response.Latency}}", ok},
	{"{{.Missing}}", execFails},
	{"{{.Request.Missing}}", execFails},
	{"{{.Struct.c}}", execFails},
	{"{{.Struct}} {{.Struct.A}} {{.Struct.B}}", ok},
	{"{{.Map.a}} {{.Map.missing}} {{.NilMap.a}} {{.Map}}", ok},
	{"{{.IntMap.x}}", execFails},
	{"{{.NameMap.k}}", execFails},
	{"{{.AnyMap.n}} {{.AnyMap.nil}} {{.AnyMap.m.k}} {{.AnyMap.none.x}}", ok},
	{"{{.DeepMap.a.b}}", ok},
	{"{{.Ptr}} {{.NilPtr}} {{.PP}}", ok},
	{"{{.NilResponse.Code}}", execFails},
	{"{{.NilResponse.Nope}}", execFails},
	{"{{.NilAny.X}}", execFails},
	{"{{.Any}} {{.AnyStr}} {{.AnyResp.Code}} {{.NilAny}}", ok},
	{"{{.Next.Str}} {{.Next.Next.Str}} {{.Next.Next.Next.Str}}", execFails},
	{"{{.Next.Next.Next}}", ok},
	{"{{.Str.X}}", execFails},
	{"{{.Fn}}", execFails},
	{"{{.Ch}}", execFails},
	{"{{.Fn 1}}", execFails},
	{"{{.Map.a 1}}", execFails},
	{"{{1 | .Str}}", execFails},
	{"{{.Struct.A.B}}", execFails},

	// Whitelisted methods.
	{"{{.Request.UserAgent}}|{{.Request.Referer}}|{{.Request.ProtoAtLeast 1 1}}|{{.Request.ProtoAtLeast 2 0}}", ok},
	{"{{.Request.Cookies}}|{{(.Request.Cookie \"session\").Value}}|{{.Request.PathValue \"id\"}}|{{.Request.PathValue \"no\"}}", ok},
	{"{{.Request.Cookie \"nope\"}}", execFails},
	{"{{.Request.Header.Get \"user-agent\"}}|{{.Request.Header.Values \"Accept\"}}|{{.Header.Get \"X-A\"}}", ok},
	{"{{with .Request.URL}}{{.String}}|{{.Redacted}}|{{.EscapedPath}}|{{.EscapedFragment}}|{{.Hostname}}|{{.Port}}|{{.RequestURI}}|{{.IsAbs}}{{end}}", ok},
	{"{{.Request.URL.Query}}|{{.Request.URL.Query.Get \"x\"}}|{{.Request.URL.Query.Has \"q\"}}|{{.Request.URL.Query.Encode}}", ok},
	{"{{.Request.URL.User.Username}}|{{.Request.URL.User.String}}|{{.Request.URL.User}}", ok},
	{"{{.Request.URL.User.Password}}", execFails}, // (string, bool) results
	{"{{range .Request.Cookies}}{{.String}} {{.Valid}};{{end}}", ok},
	{"{{.Cookie.Valid}}|{{.Cookie}}|{{range .Cookies}}{{.String}}{{.}}{{end}}", ok},
	{"{{.Values.Get \"q\"}}|{{.Values.Has \"empty\"}}|{{.Values.Encode}}|{{.Values}}", ok},
	{"{{.Request.ProtoAtLeast 1}}", execFails},
	{"{{.Request.ProtoAtLeast \"a\" 1}}", execFails},
	{"{{.Request.UserAgent 1}}", execFails},
	{"{{\"x\" | .Request.Header.Get}}", ok},
	{"{{1 | .Request.Header.Get}}", execFails},
	{"{{.Request.Header.Get}}", execFails},
	{"{{.URL.String}}|{{.URL}}|{{index .URLs 0}}|{{(index .URLs 0).Hostname}}", ok},
	{"{{range .URLMap}}{{.String}}{{end}}", execFails}, // not addressable: no pointer methods
	{"{{(index .URLMap \"u\").Hostname}}", execFails},
	{"{{index .URLMap \"u\"}}", ok},
	{"{{.NilURL.String}}", execFails},
	{"{{.NilRequest.UserAgent}}", execFails},
	{"{{.NilRequest.Method}}", execFails},
	{"{{.Stringer}}", ok},
	{"{{.Stringer.String}} {{.Stringer.Hostname}} {{.Stringer.Query.Get \"k\"}}", ok},
	{"{{.Request.URL.Query.Get 1}}", execFails},

	// Printing.
	{"{{.Float}} {{.NegZero}} {{.Inf}} {{.NaN}} {{.Big}} {{.Float32}} {{.Complex}} {{.Bool}} {{.False}}", ok},
	{"{{.Int}} {{.Neg}} {{.Int8}} {{.Uint}} {{.Uint8}} {{.Uintptr}} {{.NamedStr}} {{.NamedInt}} {{.Bytes}}", ok},
	{"{{.Err}} {{.NilErr}} {{.Val}} {{.PtrS}} {{index .PtrSs 1}} {{range .PtrSMap}}{{.}}{{end}} {{.Time}}", ok},
	{"{{.Slice}} {{.EmptySlice}} {{.NilSlice}} {{.Arr}} {{.Nested}} {{.SlicePtr}} {{.Strs}}", ok},
	{"{{.AnyKeys}} {{.PtMap}} {{.FltMap}} {{.IntMap}} {{.BoolMap}}", ok},
	{"{{.Odd}}", ok},
	{"{{.}}", ok},

	// Variables.
	{"{{$x := 1}}{{$x}}{{$x = 2}}{{$x}}", ok},
	{"{{$.TraceID}} {{with .Response}}{{$.TraceID}} {{.Code}}{{end}}", ok},
	{"{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", ok},
	{"{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", ok},
	{"{{$x := .Response}}{{$x.Code}} {{$x.Nope}}", execFails},
	{"{{$x := 1}}{{$x 2}}", execFails},
	{"{{$x := 1}}{{2 | $x}}", execFails},
	{"{{$x}}", parseFails},
	{"{{$i := 9}}{{$e := 9}}{{range $i, $e = .Slice}}{{end}}{{$i}} {{$e}}", ok},
	{"{{$e := 0}}{{range $e = .Strs}}{{$e}}{{end}}{{$e}}", ok},
	{"{{range $x := .NilSlice}}{{else}}[{{$x}}]{{end}}", ok},
	{"{{$x := 1}}{{range .Slice}}{{$x = .}}{{end}}{{$x}} {{with $y := 1}}{{$y = 2}}{{$y}}{{end}}", ok},
	{"{{define \"a\"}}{{.}}{{end}}{{template \"a\" $v := 7}}{{$v}}", ok},

	// Pipelines, parentheses, chains, literals.
	{"{{.Str | printf \"%s!\"}} {{\"a\" | printf \"%s %s\" \"b\"}}", ok},
	{"{{1 | 2}}", parseFails},
	{"{{(.Response).Code}} {{(index .Slice 1)}} {{(.Request).URL.Host}}", ok},
	{"{{(len .Slice).X}}", execFails},
	{"{{(.Slice) 1}}", execFails},
	{"{{nil}}", execFails},
	{"{{printf \"%v %v\" nil .NilPtr}}", ok},
	{"{{1}} {{1.5}} {{1e3}} {{0x1F}} {{'a'}} {{1i}} {{-7}} {{+3}} {{0x1p-2}} {{1_000}} {{0b101}} {{0o17}} {{1.0}}", ok},
	{"{{printf \"%T %T %T %T %T %T\" 1 1.0 'a' 1i 0x10 1e2}}", ok},
	{"{{18446744073709551615}}", execFails},
	{"{{99999999999999999999}}", parseFails},
	{"{{-9223372036854775808}}", ok},
	{"{{true}} {{false}} {{\"str\\n\\t\\x00\"}} {{`raw\\n`}}", ok},
	{"{{.}}}", ok},

	// Conversions of arguments to parameter types.
	{"{{add 1 2}} {{add 2.0 1}} {{add .Int 1}} {{add .Any 1}} {{add .Ptr 1}}", ok},
	{"{{add 1.5 2}}", execFails},
	{"{{add .Int8 1}}", execFails},
	{"{{add .NilPtr 1}}", execFails},
	{"{{add nil 1}}", execFails},
	{"{{add .Missing 1}}", execFails},
	{"{{add .Map.zz 1}}", execFails},
	{"{{upper 1}}", execFails},
	{"{{upper .Str}} {{upper .AnyStr}} {{upper `x`}}", ok},
	{"{{upper .NamedStr}}", execFails},
	{"{{named .NamedStr}} {{named \"lit\"}}", ok},
	{"{{fl 1.5}} {{fl 2.0}} {{fl .Float}}", ok},
	{"{{u8 1}} {{u8 .Uint8}}", ok},
	{"{{u8 -1}}", execFails},
	{"{{cx 1i}} {{cx .Complex}}", ok},
	{"{{cx 1}}", execFails},
	{"{{b true}} {{b .Bool}}", ok},
	{"{{b 1}}", execFails},
	{"{{strs .Stringer}} {{strs .PtrS}}", ok},
	{"{{strs \"x\"}}", execFails},
	{"{{strs .Val}}", ok},
	{"{{ptr .Ptr}} {{ptr .PP}}", ok},
	{"{{rv 1}} {{rv nil}} {{rv .Str}} {{rv .Slice}}", ok},
	{"{{vari \"a\"}} {{vari \"a\" 1 nil .Str}} {{2 | vari \"a\"}} {{\"only\" | vari}}", ok},
	{"{{fail false}} {{fail true}}", execFails},
	{"{{fail false}}", ok},
	{"{{boom}}", execFails},
	{"{{nofunc}}", parseFails},

	// if / else if / with / else with.
	{"{{if .Bool}}y{{else}}n{{end}} {{if .EmptySlice}}y{{else if .Slice}}s{{else}}n{{end}}", ok},
	{"{{if .NilPtr}}y{{else}}n{{end}}{{if .Struct}}s{{end}}{{if .Ch}}c{{end}}{{if .NilCh}}x{{end}}{{if .Complex}}z{{end}}", ok},
	{"{{if .Map.missing}}y{{else}}n{{end}} {{if .NilAny}}y{{else}}n{{end}} {{if .Any}}y{{end}} {{if .NegZero}}y{{else}}n{{end}}", ok},
	{"{{with .Str}}{{.}}{{end}} {{with .EmptySlice}}x{{else}}e{{end}} {{with .NilMap}}x{{else with .Map}}{{.a}}{{end}}", ok},
	{"{{with $x := .Response}}{{$x.Code}} {{.Size}}{{end}}", ok},
	{"{{with $x := 0}}a{{else}}{{$x}}{{end}}", ok},
	{"{{if .Missing}}x{{end}}", execFails},
	{"{{if}}x{{end}}", parseFails},

	// range.
	{"{{range .Slice}}{{.}},{{end}} {{range $i, $e := .Arr}}{{$i}}={{$e}} {{end}}", ok},
	{"{{range .EmptySlice}}x{{else}}empty{{end}} {{range .NilSlice}}x{{else}}nil{{end}} {{range .NilMap}}x{{else}}nilmap{{end}}", ok},
	{"{{range $k, $v := .Map}}{{$k}}={{$v}};{{end}} {{range .IntMap}}{{.}};{{end}} {{range $k, $v := .BoolMap}}{{$k}}{{$v}}{{end}}", ok},
	{"{{range $k, $v := .FltMap}}{{$k}}{{$v}};{{end}} {{range $k, $v := .PtMap}}{{$k}}{{$v}};{{end}} {{range $k, $v := .ArrMap}}{{$k}}{{$v}};{{end}}", ok},
	{"{{range $k, $v := .AnyKeys}}{{$k}}={{$v}};{{end}}", ok},
	{"{{range $k, $v := .AnyMap}}{{$k}}={{$v}};{{end}}", ok},
	{"{{range 3}}{{.}}{{end}} {{range $i := 4}}{{$i}}{{end}} {{range .Int8}}{{printf \"%T\" .}}{{end}} {{range .Uint}}{{.}}{{end}}", ok},
	{"{{range 0}}x{{else}}none{{end}} {{range -2}}x{{else}}neg{{end}}", ok},
	{"{{range $i, $j := 3}}{{end}}", execFails},
	{"{{range .Ch}}{{.}} {{end}}{{range .Ch}}again{{else}}drained{{end}}", ok},
	{"{{range $i, $v := .Ch}}{{$i}}:{{$v}} {{end}}", ok},
	{"{{range .NilCh}}x{{else}}nilch{{end}}", ok},
	{"{{range .SendCh}}x{{end}}", execFails},
	{"{{range .Seq}}{{.}}{{end}} {{range $v := .Seq}}{{$v}}{{end}} {{range .EmptySeq}}x{{else}}empty{{end}}", ok},
	{"{{range $k, $v := .Seq}}{{end}}", execFails},
	{"{{range .Seq2}}{{.}}{{end}} {{range $x := .Seq2}}{{$x}}{{.}}{{end}} {{range $k, $v := .Seq2}}{{$k}}{{$v}}{{.}};{{end}}", ok},
	{"{{range .Str}}{{end}}", execFails},
	{"{{range .Struct}}{{end}}", execFails},
	{"{{range .Fn}}{{end}}", execFails},
	{"{{range .NilAny}}x{{else}}nil{{end}} {{range .SlicePtr}}{{.}}{{end}} {{range .NilResponse}}x{{end}}", execFails},
	{"{{range .NilAny}}x{{else}}nil{{end}} {{range .SlicePtr}}{{.}}{{end}}", ok},
	{"{{range .Slice}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}|{{range .Slice}}{{if eq . 3}}{{continue}}{{end}}{{.}}{{end}}", ok},
	{"{{range .Map}}{{with .}}{{if eq . 2}}{{break}}{{end}}{{end}}{{.}}{{end}}|{{range 9}}{{if lt . 7}}{{continue}}{{end}}{{.}}{{end}}", ok},
	{"{{range .Ch}}{{break}}{{end}}{{range .Ch}}{{.}}{{end}}|{{range .Seq}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}|{{range .Seq2}}{{continue}}x{{end}}", ok},
	{"{{range $i, $row := .Nested}}{{range $row}}{{$i}}{{.}}{{$.Str}} {{end}}{{end}}", ok},
	{"{{range $x := .Slice}}{{$y := $x}}{{end}}{{$y}}", parseFails},
	{"{{break}}", parseFails},

	// define, template, block.
	{"{{define \"a\"}}A{{.}}{{end}}{{template \"a\" 1}}{{template \"a\"}}{{template \"a\" .Str}}", ok},
	{"{{template \"nope\"}}", execFails},
	{"{{block \"b\" .Str}}[{{.}}]{{end}}", ok},
	{"{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}", execFails},
	{"{{define \"l\"}}{{.Str}}{{with .Next}},{{template \"l\" .}}{{end}}{{end}}{{template \"l\" .}}", ok},
	{"{{$x := 1}}{{define \"v\"}}{{$}}{{end}}{{template \"v\" 5}}{{$x}}", ok},
	{"{{define \"v\"}}{{$x}}{{end}}", parseFails},
	{"{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}", parseFails},
	{"{{define \"e\"}}{{.Missing}}{{end}}{{template \"e\" .}}", execFails},

	// Builtins.
	{"{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" \"x\"}} {{or 0 \"\"}} {{and .Str .Slice}} {{or .NilPtr .Any}}", ok},
	{"{{or 1 (index .Slice 99)}} {{and 0 (index .Slice 99)}} {{1 | and 2}} {{0 | or \"\"}} {{0 | and 1}}", ok},
	{"{{and 1 (index .Slice 99)}}", execFails},
	{"{{and}}", execFails},
	{"{{printf \"%T\" (and 1 .Float)}} {{printf \"%T\" (or nil)}} {{or nil}}", ok},
	{"{{not 0}} {{not .Slice}} {{not .NilAny}} {{not .Struct}} {{not nil}}", ok},
	{"{{not 1 2}}", execFails},
	{"{{len .Slice}} {{len .Str}} {{len .Map}} {{len .Ch}} {{len .SlicePtr}} {{len .Arr}} {{len .AnyStr}} {{len .NilMap}}", ok},
	{"{{len .NilPtr}}", execFails},
	{"{{len 3}}", execFails},
	{"{{len nil}}", execFails},
	{"{{len .NilAny}}", execFails},
	{"{{index .Slice 1}} {{index .Arr 2}} {{index .Str 1}} {{index .Map \"b\"}} {{index .Map \"zz\"}} {{index .DeepMap \"a\" \"b\" 1}}", ok},
	{"{{index .Slice}} {{index .IntMap 3}} {{index .IntMap .Int8}} {{index .Slice .Uint8}}", execFails},
	{"{{index .Slice}} {{index .IntMap 3}} {{index .IntMap .Int8}} {{index .AnyKeys nil}} {{index .AnyMap \"nil\"}}", ok},
	{"{{index .Request.Header \"X-B3-Traceid\"}} {{index .Request.Header \"None\"}}", ok},
	{"{{index .Slice 5}}", execFails},
	{"{{index .Slice -1}}", execFails},
	{"{{index .Slice nil}}", execFails},
	{"{{index .Map 1}}", execFails},
	{"{{index nil 1}}", execFails},
	{"{{index .NilPtr 1}}", execFails},
	{"{{index .Int 1}}", execFails},
	{"{{index .Slice \"a\"}}", execFails},
	{"{{index .SlicePtr 0}} {{index .Nested 0 1}} {{index .Any}}", ok},
	{"{{slice .Str 1 3}} {{slice .Slice 1}} {{slice .Slice 1 2 3}} {{slice .Arr 1}} {{slice .Str}} {{slice .Slice 0 0}} {{slice .Strs 3}}", ok},
	{"{{slice .Str 1 2 3}}", execFails},
	{"{{slice .Slice 3 1}}", execFails},
	{"{{slice .Slice 1 2 9}}", execFails},
	{"{{slice .Slice 1 2 3 4}}", execFails},
	{"{{slice 1}}", execFails},
	{"{{slice nil}}", execFails},
	{"{{slice .Any 1}}", execFails},
	{"{{slice \"abc\" .Any}}", execFails},
	{"{{range .URLMap}}{{end}}{{slice (index .PtMap .Struct) 1}}", execFails},
	{"{{print 1 2 \"a\" \"b\" 3 nil}}|{{println 1 \"x\"}}|{{printf \"%d-%s-%v-%x\" 1 \"a\" .Slice .Str}}|{{print}}|{{print .Ptr .Err .NilErr}}", ok},
	{"{{printf 1}}", execFails},
	{"{{printf .Int}}", execFails},
	{"{{printf .NamedStr}}", execFails},
	{"{{printf .AnyStr}} {{printf .Str}}", ok},
	{"{{printf}}", execFails},
	{"{{html \"<a href='x'>&\\\"</a>\\x00\"}} {{html .Ptr}} {{html 1 2}} {{html nil}} {{html .Odd}} {{html .Err .Val}}", ok},
	{"{{js \"<a href='x'>&\\\"=\\\\</a>\"}} {{js .Odd}} {{js .Ptr}} {{js 1 2}} {{js nil}} {{js .Request.UserAgent}}", ok},
	{"{{urlquery \"a b&c=d/é\"}} {{urlquery .Odd}} {{urlquery 1 \"x\"}} {{urlquery .NilPtr}}", ok},
	{"{{call .Fn}} {{call .FnArgs 1 \"x\"}} {{call .FnVar \"v\" 1 2 3}} {{call .FnVar \"v\"}} {{call .FnInt8 .Int}} {{.Fn | call}}", ok},
	{"{{call .FnValue 3}}", execFails},
	{"{{call .FnValue nil}}", ok},
	{"{{call .FnErr}}", execFails},
	{"{{call .NilFn}}", execFails},
	{"{{call .Str}}", execFails},
	{"{{call nil}}", execFails},
	{"{{call .FnArgs 1}}", execFails},
	{"{{call .FnArgs \"x\" 1}}", execFails},
	{"{{call .FnArgs 1 nil}}", execFails},
	{"{{call .FnPanic}}", execFails},
	{"{{call .FnResult}}", execFails},
	{"{{call}}", execFails},
	{"{{call .FnVar}}", execFails},
	{"{{eq 1 1}} {{eq 1 2 3 1}} {{eq .Uint 7}} {{eq -1 .Uint}} {{eq .Uint8 200}} {{eq \"a\" \"a\"}} {{eq 1.5 1.5}} {{eq 1i 1i}} {{eq true .Bool}}", ok},
	{"{{eq 1 1.0}}", execFails},
	{"{{eq .NilPtr nil}} {{eq nil nil}} {{eq .Slice nil}} {{eq nil 1}} {{eq 1 nil}} {{eq .Struct .Struct}} {{eq .Response .Response}} {{eq .Any 4}} {{eq .Err .Err}} {{eq .Map nil}}", ok},
	{"{{eq .Slice .Slice}}", execFails},
	{"{{eq .Slice .Map}}", execFails},
	{"{{eq 1}}", execFails},
	{"{{eq .Str 1}}", execFails},
	{"{{eq 1 1 \"x\"}}", ok},
	{"{{eq 1 2 \"x\"}}", execFails},
	{"{{ne 1 2}} {{ne \"a\" \"a\"}} {{ne .NilPtr nil}}", ok},
	{"{{ne 1 \"a\"}}", execFails},
	{"{{lt 1 2}} {{lt \"a\" \"b\"}} {{lt 1.5 2.5}} {{lt .Uint -1}} {{lt -1 .Uint}} {{lt .Int8 .Uint8}} {{lt .Any 5}}", ok},
	{"{{le 2 2}} {{le 3 2}} {{gt 3 2}} {{gt 2 2}} {{ge 2 3}} {{ge 3 3}} {{le \"b\" \"a\"}} {{gt .Uint .Neg}}", ok},
	{"{{lt true false}}", execFails},
	{"{{lt 1 \"a\"}}", execFails},
	{"{{lt nil 1}}", execFails},
	{"{{lt 1i 2i}}", execFails},
	{"{{lt .Slice .Slice}}", execFails},
	{"{{le true true}}", execFails},
	{"{{gt 1 1.5}}", execFails},
	{"{{ge 1 2 3}}", execFails},

	// Parse errors.
	{"{{end}}", parseFails},
	{"{{range}}{{end}}", parseFails},
	{"{{.Str", parseFails},
	{"{{.Str | }}", ok},
	{"{{.Str | | .Str}}", parseFails},
	{"{{else}}", parseFails},
	{"{{1.X}}", parseFails},
}

func TestMatchesTextTemplate(t *testing.T) {
	for _, overrideJS := range []bool{false, true} {
		funcs := testFuncs(overrideJS)
		for _, c := range differentialCases {
			std, ours := runStd(c.text, funcs, 0), runOurs(c.text, funcs, 0)
			problem, compared := compareOutcomes(c.text, std, ours)
			if problem != "" || !compared {
				t.Errorf("js overridden: %v: %s (unsupported method: %v)", overrideJS, problem, !compared)
				continue
			}
			got := ok
			switch {
			case std.parseErr != nil:
				got = parseFails
			case std.execErr != nil:
				got = execFails
			}
			if got != c.want {
				t.Errorf("%q (js overridden: %v): outcome %d, want %d (text/template: %v %v, output %q)",
					c.text, overrideJS, got, c.want, std.parseErr, std.execErr, std.out)
			}
		}
	}
}

// TestFuncsOverrideBuiltins checks that a function given to Parse hides the
// builtin of its name (and, which otherwise short-circuits, then evaluates
// all its arguments).
func TestFuncsOverrideBuiltins(t *testing.T) {
	funcs := map[string]any{
		"and": func(a, b any) string { return fmt.Sprint("and:", a, b) },
		"len": func(s string) int { return 42 },
	}
	for _, c := range []struct {
		text string
		want string // "" if it must fail
	}{
		{"{{and 1 0}} {{len .Str}}", "and:1 0 42"},
		{"{{and 0 (index .Slice 99)}}", ""},
		{"{{and 1 2 3}}", ""},
		{"{{len .Slice}}", ""},
	} {
		std, ours := runStd(c.text, funcs, 0), runOurs(c.text, funcs, 0)
		if problem, compared := compareOutcomes(c.text, std, ours); problem != "" || !compared {
			t.Errorf("%s (compared: %v)", problem, compared)
		}
		if c.want != "" && (ours.execErr != nil || ours.out != c.want) {
			t.Errorf("%q: got %q, %v; want %q", c.text, ours.out, ours.execErr, c.want)
		}
		if c.want == "" && ours.execErr == nil {
			t.Errorf("%q: got %q, want an error", c.text, ours.out)
		}
	}
}

// TestExecuteData covers the data Execute accepts besides a pointer to a
// struct: nil, a struct value (its pointer methods are then out of reach),
// a reflect.Value.
func TestExecuteData(t *testing.T) {
	for _, c := range []struct {
		name string
		data any
		text string
	}{
		{"nil", nil, "{{.}} {{.X}} {{.X.Y}} {{$}} {{len .}}"},
		{"nil", nil, "{{.}} {{.X}} {{.X.Y}} {{$}}"},
		{"struct value", *newTestData(), "{{.Str}} {{.URL}} {{.PtrS}}"},
		{"struct value", *newTestData(), "{{.URL.String}}"},
		{"reflect.Value", reflect.ValueOf(map[string]int{"a": 1}), "{{.a}} {{.}}"},
		{"int", 3, "{{range .}}{{.}}{{end}}"},
	} {
		std, err := template.New("t").Parse(c.text)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := Parse("t", c.text, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want, got bytes.Buffer
		werr, gerr := std.Execute(&want, c.data), ours.Execute(&got, c.data)
		if (werr == nil) != (gerr == nil) || want.String() != got.String() {
			t.Errorf("%s %q: got %q, %v; text/template %q, %v", c.name, c.text, got.String(), gerr, want.String(), werr)
		}
	}
}

type failingWriter struct{ after int }

var errWriteFailed = errors.New("write failed")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errWriteFailed
	}
	w.after--
	return len(p), nil
}

// TestWriteError checks that a writer's error stops the execution and is
// returned as it is, from text, printed values and fmt alike.
func TestWriteError(t *testing.T) {
	for _, text := range []string{"text", "{{.Str}}", "a{{.Int}}", "a{{.Slice}}", "a{{range .Slice}}{{.}}{{end}}", `{{define "x"}}a{{.}}{{end}}{{template "x" 1}}`} {
		tmpl, err := Parse("t", text, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := &failingWriter{} // fails the first write
		if strings.HasPrefix(text, "a") {
			w.after = 1 // fails the one after the text "a"
		}
		if err := tmpl.Execute(w, newTestData()); err != errWriteFailed {
			t.Errorf("%q: error %v, want the writer's", text, err)
		}
	}
}

// TestParseErrors checks that Parse reports what text/template's Parse and
// Funcs reject (Funcs by panicking).
func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		text  string
		funcs map[string]any
		want  string
	}{
		{"{{.X", nil, "unclosed action"},
		{"{{f}}", map[string]any{"f": 1}, "not a function"},
		{"{{f}}", map[string]any{"f": func() {}}, "0 results"},
		{"{{f}}", map[string]any{"f": func() (int, int) { return 0, 0 }}, "second return value should be error"},
		{"{{f}}", map[string]any{"a-b": func() int { return 0 }}, "not a valid identifier"},
		{"{{f}}", map[string]any{"f": nil}, "not a function"},
	} {
		_, err := Parse("t", c.text, c.funcs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %v: error %v, want it to contain %q", c.text, c.funcs, err, c.want)
		}
	}
}

// TestExecErrorMessage checks that an execution error says where it
// happened, as text/template's do.
func TestExecErrorMessage(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"ab\n{{.Missing}}", `template: t:2:2: executing "t" at <.Missing>: can't evaluate field Missing in type *logtemplate.testData`},
		{`{{define "d"}}{{index .Slice 9}}{{end}}{{template "d" .}}`, `template: t:1:16: executing "d" at <index .Slice 9>: error calling index: index out of range: 9`},
		{`{{define "r"}}{{template "r"}}{{end}}{{template "r"}}`, "exceeded maximum template depth (100000)"},
	} {
		tmpl, err := Parse("t", c.text, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = tmpl.Execute(new(bytes.Buffer), newTestData())
		var ee *ExecError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want an *ExecError containing %q", c.text, err, c.want)
		}
	}
}

// TestConcurrentExecute executes one template from many goroutines (run
// with -race).
func TestConcurrentExecute(t *testing.T) {
	tmpl, err := Parse("t", knativeTemplate+`{{range $k, $v := .Map}}{{$k}}{{end}}{{.Request.URL.Hostname}}`, testFuncs(true))
	if err != nil {
		t.Fatal(err)
	}
	data := newTestData()
	var want bytes.Buffer
	if err := tmpl.Execute(&want, data); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				var got bytes.Buffer
				if err := tmpl.Execute(&got, data); err != nil || got.String() != want.String() {
					t.Errorf("got %q, %v; want %q", got.String(), err, want.String())
					return
				}
			}
		})
	}
	wg.Wait()
}
