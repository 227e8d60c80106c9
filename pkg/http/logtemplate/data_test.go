package logtemplate

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// The data the differential tests and the fuzz target execute templates
// on: the request log's input shape, plus values of every kind the
// language treats specially. newTestData builds a fresh copy each time (a
// template may consume a channel, or make text/template call a method that
// changes the request).

type testResponse struct {
	Code, Size int
	Latency    float64
}

type testRevision struct {
	Name, Namespace, Service, Configuration, PodName, PodIP string
}

type point struct{ X, Y int }

type inner struct {
	A int
	B string
	c int
}

type valStringer struct{ N int }

func (v valStringer) String() string { return fmt.Sprintf("val<%d>", v.N) }

type ptrStringer struct{ N int }

func (p *ptrStringer) String() string { return fmt.Sprintf("ptr<%d>", p.N) }

type namedStr string
type namedInt int

type testData struct {
	Request  *http.Request
	Response *testResponse
	Revision *testRevision
	TraceID  string

	NilRequest  *http.Request
	NilResponse *testResponse

	Int, Neg        int
	Int8            int8
	Uint            uint
	Uint8           uint8
	Uintptr         uintptr
	Float, NegZero  float64
	Inf, NaN, Big   float64
	Float32         float32
	Complex         complex128
	Bool, False     bool
	Str, Empty, Odd string
	NamedStr        namedStr
	NamedInt        namedInt
	Bytes           []byte

	Slice, EmptySlice, NilSlice []int
	Strs                        []string
	SlicePtr                    *[]int
	Arr                         [3]int
	Nested                      [][]int

	Map     map[string]int
	NilMap  map[string]int
	IntMap  map[int]string
	BoolMap map[bool]string
	FltMap  map[float64]string
	PtMap   map[point]string
	ArrMap  map[[2]int]string
	AnyKeys map[any]string
	AnyMap  map[string]any
	DeepMap map[string]map[string][]int
	NameMap map[namedStr]int

	Ptr, NilPtr *int
	PP          **int
	Any, AnyStr any
	AnyResp     any
	NilAny      any

	Err, NilErr error
	Stringer    fmt.Stringer
	Val         valStringer
	PtrS        ptrStringer
	PtrSs       []ptrStringer
	PtrSMap     map[string]ptrStringer

	Struct inner
	Next   *testData
	Time   time.Time

	URL     url.URL
	URLs    []url.URL
	URLMap  map[string]url.URL
	NilURL  *url.URL
	Header  http.Header
	Values  url.Values
	Cookie  *http.Cookie
	Cookies []http.Cookie

	Fn       func() string
	FnErr    func() (string, error)
	FnArgs   func(int, string) string
	FnInt8   func(int8) int8
	FnVar    func(string, ...int) string
	FnValue  func(reflect.Value) reflect.Value
	FnPanic  func() string
	NilFn    func() string
	FnResult func() (int, int)

	Ch, NilCh chan int
	SendCh    chan<- int
	Seq       iter.Seq[int]
	Seq2      iter.Seq2[string, int]
	EmptySeq  iter.Seq[int]
}

func newTestData() *testData {
	req, err := http.NewRequest("POST", "https://alice:s%20cret@svc.example:8443/api/items%2F7?x=1&q=a+b&x=2#frag%21", strings.NewReader("body"))
	if err != nil {
		panic(err)
	}
	req.RemoteAddr = "10.1.2.3:4567"
	req.RequestURI = "/api/items%2F7?x=1&q=a+b&x=2"
	req.Header.Set("User-Agent", `curl/8.0 "quoted" <tag> & 'single' é`)
	req.Header.Set("Referer", "https://ref.example/?a=1&b=2")
	req.Header.Set("X-B3-Traceid", "80f198ee56343ba864fe8b2a57d3eff7")
	req.Header.Add("Accept", "text/html")
	req.Header.Add("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: "session", Value: "abc123"})
	req.AddCookie(&http.Cookie{Name: "lang", Value: "en"})
	req.SetPathValue("id", "42")

	one, two := 1, 2
	pone := &one
	slice := []int{1, 2, 3, 4, 5}
	ch := make(chan int, 3)
	ch <- 10
	ch <- 20
	ch <- 30
	close(ch)
	u, _ := url.Parse("https://bob@example.com:8080/p/a%20th?k=v&k=w#f")
	d := &testData{
		Request:  req,
		Response: &testResponse{Code: 200, Size: 12, Latency: 0.25},
		Revision: &testRevision{"hello-00001", "default", "hello", "hello-config", "hello-00001-pod", "10.0.0.7"},
		TraceID:  "80f198ee56343ba864fe8b2a57d3eff7",

		Int: 5, Neg: -3, Int8: 3, Uint: 7, Uint8: 200, Uintptr: 9,
		Float: 1.5, NegZero: math.Copysign(0, -1), Inf: math.Inf(1), NaN: math.NaN(), Big: 1e21,
		Float32: 0.1, Complex: 1 + 2i, Bool: true,
		Str: "hello", Odd: "a\x00b\xffc<d>&'\"=\\\u2028\U0001F600\u00a0\x7f", NamedStr: "named", NamedInt: 11,
		Bytes: []byte("bytes"),

		Slice: slice, EmptySlice: []int{}, Strs: []string{"x", "y", "z"}, SlicePtr: &slice,
		Arr: [3]int{7, 8, 9}, Nested: [][]int{{1, 2}, {3}},

		Map:     map[string]int{"a": 1, "b": 2, "c": 3},
		IntMap:  map[int]string{3: "three", -1: "minus one", 2: "two"},
		BoolMap: map[bool]string{true: "T", false: "F"},
		FltMap:  map[float64]string{2.5: "x", -1: "y", math.Inf(1): "inf"},
		PtMap:   map[point]string{{2, 1}: "b", {1, 2}: "a", {1, 1}: "c"},
		ArrMap:  map[[2]int]string{{2, 0}: "y", {1, 9}: "x"},
		AnyKeys: map[any]string{1: "int1", "a": "strA", 2: "int2", "b": "strB", nil: "nil"},
		AnyMap:  map[string]any{"n": 1, "s": "str", "nil": nil, "m": map[string]int{"k": 4}},
		DeepMap: map[string]map[string][]int{"a": {"b": {5, 6}}},
		NameMap: map[namedStr]int{"k": 1},

		Ptr: pone, PP: &pone,
		Any: 4, AnyStr: "anystr", AnyResp: &testResponse{Code: 404},

		Err:      errors.New("boom"),
		Stringer: u,
		Val:      valStringer{3},
		PtrS:     ptrStringer{4},
		PtrSs:    []ptrStringer{{5}, {6}},
		PtrSMap:  map[string]ptrStringer{"k": {7}},

		Struct: inner{A: 1, B: "b", c: 2},
		Next:   &testData{Str: "next", Int: 2, Next: &testData{Str: "last"}},
		Time:   time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),

		URL:     *u,
		URLs:    []url.URL{*u},
		URLMap:  map[string]url.URL{"u": *u},
		Header:  http.Header{"X-A": {"1", "2"}},
		Values:  url.Values{"q": {"go lang"}, "empty": {""}},
		Cookie:  &http.Cookie{Name: "c", Value: "v"},
		Cookies: []http.Cookie{{Name: "c1", Value: "v1"}},

		Fn:       func() string { return "fn" },
		FnErr:    func() (string, error) { return "", errors.New("fn failed") },
		FnArgs:   func(i int, s string) string { return fmt.Sprint(i, s) },
		FnInt8:   func(i int8) int8 { return i * 2 },
		FnVar:    func(s string, xs ...int) string { return fmt.Sprint(s, xs) },
		FnValue:  func(v reflect.Value) reflect.Value { return reflect.ValueOf(fmt.Sprint("value:", v)) },
		FnPanic:  func() string { panic("fn panicked") },
		FnResult: func() (int, int) { return 1, 2 },

		Ch:       ch,
		SendCh:   make(chan int),
		Seq:      func(yield func(int) bool) { _ = yield(1) && yield(2) && yield(3) },
		Seq2:     func(yield func(string, int) bool) { _ = yield("a", 1) && yield("b", 2) },
		EmptySeq: func(func(int) bool) {},
	}
	_ = two
	return d
}

// testFuncs are functions both engines get, besides the builtins.
func testFuncs(overrideJS bool) map[string]any {
	m := map[string]any{
		"upper": strings.ToUpper,
		"add":   func(a, b int) int { return a + b },
		"fail": func(fail bool) (string, error) {
			if fail {
				return "", errors.New("failed")
			}
			return "ok", nil
		},
		"boom":  func() string { panic("boom") },
		"fl":    func(f float64) float64 { return f * 2 },
		"u8":    func(u uint8) uint8 { return u + 1 },
		"cx":    func(c complex128) complex128 { return c * 2 },
		"b":     func(b bool) bool { return !b },
		"named": func(s namedStr) string { return "named:" + string(s) },
		"strs":  func(s fmt.Stringer) string { return s.String() },
		"ptr":   func(p *int) int { return *p },
		"rv":    func(v reflect.Value) reflect.Value { return reflect.ValueOf(fmt.Sprintf("<%v>", v)) },
		"vari":  func(s string, xs ...any) string { return fmt.Sprint(s, xs) },
	}
	if overrideJS {
		m["js"] = func(args ...any) string { return "js(" + fmt.Sprint(args...) + ")" }
	}
	return m
}

// pointers matches heap addresses, which differ between two copies of the
// data, in any base fmt may print them (long runs of hex digits); outputs
// are compared with them replaced.
var pointers = regexp.MustCompile(`[0-9A-Fa-f]{9,}`)

// outcome is what one engine did with one template.
type outcome struct {
	parseErr, execErr error
	out               string
}

// cappedBuffer is a bytes.Buffer that fails writes beyond limit bytes
// (limit 0: no limit).
type cappedBuffer struct {
	bytes.Buffer
	limit int
}

var errOutputTooLarge = errors.New("output too large")

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.limit > 0 && b.Len()+len(p) > b.limit {
		return 0, errOutputTooLarge
	}
	return b.Buffer.Write(p)
}

// runStd parses and executes text with text/template on fresh data, with
// output limited to limit bytes (0: unlimited).
func runStd(text string, funcs map[string]any, limit int) outcome {
	t, err := template.New("t").Funcs(funcs).Parse(text)
	if err != nil {
		return outcome{parseErr: err}
	}
	buf := &cappedBuffer{limit: limit}
	err = t.Execute(buf, newTestData())
	return outcome{execErr: err, out: pointers.ReplaceAllString(buf.String(), "#")}
}

// runOurs is runStd for this package.
func runOurs(text string, funcs map[string]any, limit int) outcome {
	t, err := Parse("t", text, funcs)
	if err != nil {
		return outcome{parseErr: err}
	}
	buf := &cappedBuffer{limit: limit}
	err = t.Execute(buf, newTestData())
	return outcome{execErr: err, out: pointers.ReplaceAllString(buf.String(), "#")}
}

// compareOutcomes checks ours against std (see the package's compatibility
// rules). It returns a description of a disagreement, or "", and whether the
// comparison applied (false: ours reported an unsupported method).
func compareOutcomes(text string, std, ours outcome) (problem string, compared bool) {
	if (std.parseErr == nil) != (ours.parseErr == nil) {
		return fmt.Sprintf("%q: parse errors differ: text/template %v, ours %v", text, std.parseErr, ours.parseErr), true
	}
	if std.parseErr != nil {
		if std.parseErr.Error() != ours.parseErr.Error() {
			return fmt.Sprintf("%q: parse error text differs:\n text/template %v\n ours          %v", text, std.parseErr, ours.parseErr), true
		}
		return "", true
	}
	if errors.Is(ours.execErr, errInternal) {
		return fmt.Sprintf("%q: internal error: %v", text, ours.execErr), true
	}
	if errors.Is(ours.execErr, ErrUnsupportedMethod) {
		return "", false
	}
	switch {
	case std.execErr != nil && ours.execErr == nil:
		return fmt.Sprintf("%q: text/template failed (%v), ours succeeded with %q", text, std.execErr, ours.out), true
	case std.execErr == nil && ours.execErr != nil:
		return fmt.Sprintf("%q: text/template succeeded with %q, ours failed: %v", text, std.out, ours.execErr), true
	case std.execErr == nil && std.out != ours.out:
		return fmt.Sprintf("%q: outputs differ:\n text/template %q\n ours          %q", text, std.out, ours.out), true
	}
	return "", true
}
