package logtemplate

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// whitelist holds the methods templates may call, as method expressions:
// their first parameter is the receiver, T for a value method, *T for a
// pointer method. They are called like functions (arguments converted, a
// non-nil error result failing the template).
var whitelist = []*callee{
	stringMethod("UserAgent", (*http.Request).UserAgent),
	stringMethod("Referer", (*http.Request).Referer),
	method("ProtoAtLeast", (*http.Request).ProtoAtLeast),
	method("Cookies", (*http.Request).Cookies),
	method("Cookie", (*http.Request).Cookie),
	method("PathValue", (*http.Request).PathValue),

	method("Get", http.Header.Get),
	method("Values", http.Header.Values),

	stringMethod("String", (*url.URL).String),
	stringMethod("Redacted", (*url.URL).Redacted),
	stringMethod("EscapedPath", (*url.URL).EscapedPath),
	stringMethod("EscapedFragment", (*url.URL).EscapedFragment),
	stringMethod("Hostname", (*url.URL).Hostname),
	stringMethod("Port", (*url.URL).Port),
	stringMethod("RequestURI", (*url.URL).RequestURI),
	method("Query", (*url.URL).Query),
	method("IsAbs", (*url.URL).IsAbs),

	method("Get", url.Values.Get),
	method("Has", url.Values.Has),
	stringMethod("Encode", url.Values.Encode),

	stringMethod("Username", (*url.Userinfo).Username),
	method("Password", (*url.Userinfo).Password), // returns (string, bool): fails as in text/template
	stringMethod("String", (*url.Userinfo).String),

	stringMethod("String", (*http.Cookie).String),
	method("Valid", (*http.Cookie).Valid),
}

func method(name string, expr any) *callee {
	v := reflect.ValueOf(expr)
	return &callee{name: name, typ: v.Type(), fn: v, recv: 1}
}

// stringMethod is method for a method taking nothing and returning a
// string, which is then called without reflection.
func stringMethod[R any](name string, expr func(R) string) *callee {
	c := method(name, expr)
	c.stringMethod = func(recv reflect.Value) string { return expr(recv.Interface().(R)) }
	return c
}

// knownType lists all the exported methods of a type T: those with a
// value receiver (in the method sets of T and *T) and those with a pointer
// receiver (in the method set of *T only). For these types, a name that is
// a method and not on the whitelist is reported as such; a test checks the
// lists against reflection.
type knownType struct {
	pkgPath, name string
	value         []string
	pointer       []string
}

// queueProxyHTTP is the package of the request log's template input types.
const queueProxyHTTP = "github.com/queue-proxy/queue-proxy/pkg/http"

var knownTypes = []knownType{{
	pkgPath: "net/http", name: "Request",
	pointer: []string{"AddCookie", "BasicAuth", "Clone", "Context", "Cookie", "Cookies", "CookiesNamed",
		"FormFile", "FormValue", "MultipartReader", "ParseForm", "ParseMultipartForm", "PathValue",
		"PostFormValue", "ProtoAtLeast", "Referer", "SetBasicAuth", "SetPathValue", "UserAgent",
		"WithContext", "Write", "WriteProxy"},
}, {
	pkgPath: "net/http", name: "Header",
	value: []string{"Add", "Clone", "Del", "Get", "Set", "Values", "Write", "WriteSubset"},
}, {
	pkgPath: "net/url", name: "URL",
	pointer: []string{"AppendBinary", "EscapedFragment", "EscapedPath", "Hostname", "IsAbs", "JoinPath",
		"MarshalBinary", "Parse", "Port", "Query", "Redacted", "RequestURI", "ResolveReference", "String",
		"UnmarshalBinary"},
}, {
	pkgPath: "net/url", name: "Values",
	value: []string{"Add", "Del", "Encode", "Get", "Has", "Set"},
}, {
	pkgPath: "net/url", name: "Userinfo",
	pointer: []string{"Password", "String", "Username"},
}, {
	pkgPath: "net/http", name: "Cookie",
	pointer: []string{"String", "Valid"},
}, {
	pkgPath: queueProxyHTTP, name: "RequestLogTemplateInput",
}, {
	pkgPath: queueProxyHTTP, name: "RequestLogResponse",
}, {
	pkgPath: queueProxyHTTP, name: "RequestLogRevision",
}}

// methodKey names a method of a receiver type (T or *T).
type methodKey struct {
	recv reflect.Type
	name string
}

var (
	whitelisted = func() map[methodKey]*callee {
		m := make(map[methodKey]*callee, len(whitelist))
		for _, c := range whitelist {
			m[methodKey{c.typ.In(0), c.name}] = c
		}
		return m
	}()
	knownByName = func() map[string]*knownType {
		m := make(map[string]*knownType, len(knownTypes))
		for i := range knownTypes {
			k := &knownTypes[i]
			m[k.pkgPath+"."+k.name] = k
		}
		return m
	}()
)

// resolution is what `.name` means on a value whose method set is that of
// a type P (the value's type, or the pointer to it when it is addressable).
type resolution struct {
	method      *callee  // a whitelisted method
	unsupported bool     // a method, not whitelisted
	supported   []string // if unsupported, the whitelisted methods of P
	hasMethods  bool     // P's methods are not known, and it has some

	// For a struct type (or a pointer to one), its field name.
	field    bool
	exported bool
	index    []int
}

// resolutions caches resolve's answers: a map replaced (copied) on each
// addition, so that a lookup takes no lock.
var (
	resolutions   atomic.Pointer[map[methodKey]*resolution]
	resolutionsMu sync.Mutex
)

// maxResolutions bounds the cache; beyond it, answers are computed each
// time.
const maxResolutions = 1024

// resolve returns what name means in a value with the method set of p.
func resolve(p reflect.Type, name string) *resolution {
	key := methodKey{p, name}
	if m := resolutions.Load(); m != nil {
		if r, ok := (*m)[key]; ok {
			return r
		}
	}
	r := computeResolution(p, name)
	resolutionsMu.Lock()
	defer resolutionsMu.Unlock()
	old := resolutions.Load()
	if old != nil && len(*old) >= maxResolutions {
		return r
	}
	m := make(map[methodKey]*resolution, 1+len(derefMap(old)))
	for k, v := range derefMap(old) {
		m[k] = v
	}
	m[key] = r
	resolutions.Store(&m)
	return r
}

func derefMap(m *map[methodKey]*resolution) map[methodKey]*resolution {
	if m == nil {
		return nil
	}
	return *m
}

func computeResolution(p reflect.Type, name string) *resolution {
	r := &resolution{}
	t, isPtr := p, p.Kind() == reflect.Pointer
	if isPtr {
		t = p.Elem()
	}
	if k := knownByName[t.PkgPath()+"."+t.Name()]; k != nil && t.Name() != "" {
		r.method = whitelisted[methodKey{p, name}]
		if r.method == nil && isPtr {
			r.method = whitelisted[methodKey{t, name}]
		}
		if r.method == nil && (slices.Contains(k.value, name) || isPtr && slices.Contains(k.pointer, name)) {
			r.unsupported = true
			r.supported = supportedMethods(p)
		}
	} else if p.NumMethod() > 0 {
		r.hasMethods = true
	}
	if t.Kind() == reflect.Struct {
		if f, ok := t.FieldByName(name); ok {
			r.field, r.exported, r.index = true, f.IsExported(), f.Index
		}
	}
	return r
}

// supportedMethods lists the whitelisted methods in the method set of p.
func supportedMethods(p reflect.Type) []string {
	var names []string
	for _, c := range whitelist {
		if recv := c.typ.In(0); recv == p || p.Kind() == reflect.Pointer && recv == p.Elem() {
			names = append(names, c.name)
		}
	}
	return names
}

func joinNames(names []string) string { return strings.Join(names, ", ") }
