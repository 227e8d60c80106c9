package logtemplate

import "reflect"

// KnownMethods returns, for the external tests, the hard-coded method lists
// by "pkgpath.Name": the methods with value receivers and those with pointer
// receivers.
func KnownMethods() map[string][2][]string {
	m := make(map[string][2][]string, len(knownTypes))
	for _, k := range knownTypes {
		m[k.pkgPath+"."+k.name] = [2][]string{k.value, k.pointer}
	}
	return m
}

// Whitelist returns, for the external tests, the receiver type and name of
// each whitelisted method.
func Whitelist() []struct {
	Recv reflect.Type
	Name string
} {
	var w []struct {
		Recv reflect.Type
		Name string
	}
	for _, c := range whitelist {
		w = append(w, struct {
			Recv reflect.Type
			Name string
		}{c.typ.In(0), c.name})
	}
	return w
}
