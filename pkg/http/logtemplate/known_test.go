package logtemplate_test

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/http/logtemplate"
)

// TestKnownMethodLists checks the hard-coded method lists against
// reflection, so that a Go upgrade adding a method to one of these types (or
// a method added to the request log's input types) is noticed: the new
// method must be listed, and so reported as unsupported rather than taken
// for a missing field.
func TestKnownMethodLists(t *testing.T) {
	types := []reflect.Type{
		reflect.TypeFor[http.Request](),
		reflect.TypeFor[http.Header](),
		reflect.TypeFor[url.URL](),
		reflect.TypeFor[url.Values](),
		reflect.TypeFor[url.Userinfo](),
		reflect.TypeFor[http.Cookie](),
		reflect.TypeFor[pkghttp.RequestLogTemplateInput](),
		reflect.TypeFor[pkghttp.RequestLogResponse](),
		reflect.TypeFor[pkghttp.RequestLogRevision](),
	}
	known := logtemplate.KnownMethods()
	if len(known) != len(types) {
		t.Errorf("%d known types, want %d", len(known), len(types))
	}
	for _, typ := range types {
		key := typ.PkgPath() + "." + typ.Name()
		lists, ok := known[key]
		if !ok {
			t.Errorf("%s: not a known type", key)
			continue
		}
		var value, pointer []string
		for i := range typ.NumMethod() {
			value = append(value, typ.Method(i).Name)
		}
		pt := reflect.PointerTo(typ)
		for i := range pt.NumMethod() {
			if name := pt.Method(i).Name; !slices.Contains(value, name) {
				pointer = append(pointer, name)
			}
		}
		if got := slices.Sorted(slices.Values(lists[0])); !slices.Equal(got, value) {
			t.Errorf("%s: value methods listed %v, reflection says %v", key, got, value)
		}
		if got := slices.Sorted(slices.Values(lists[1])); !slices.Equal(got, pointer) {
			t.Errorf("%s: pointer methods listed %v, reflection says %v", key, got, pointer)
		}
	}
	for _, w := range logtemplate.Whitelist() {
		typ := w.Recv
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if _, ok := reflect.PointerTo(typ).MethodByName(w.Name); !ok {
			t.Errorf("whitelisted %s.%s is not a method", w.Recv, w.Name)
		}
		if _, ok := known[typ.PkgPath()+"."+typ.Name()]; !ok {
			t.Errorf("whitelisted %s.%s: receiver is not a known type", w.Recv, w.Name)
		}
	}
}
