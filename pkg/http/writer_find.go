package http

import "net/http"

// maxUnwrap bounds FindWriter's walk, against a writer that unwraps to
// itself.
const maxUnwrap = 32

// FindWriter returns the first writer of type T in w's Unwrap chain, w
// included: how a layer tells an outer one about a request through the
// ResponseWriter it was given, with no context value and no allocation.
// Every writer between them must have an Unwrap method (as
// http.ResponseController expects); where one lacks it, nothing is found.
func FindWriter[T any](w http.ResponseWriter) (T, bool) {
	for range maxUnwrap {
		if t, ok := w.(T); ok {
			return t, true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		if w = u.Unwrap(); w == nil {
			break
		}
	}
	var zero T
	return zero, false
}
