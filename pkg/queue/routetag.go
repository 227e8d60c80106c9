package queue

import (
	"net/http"

	netheader "knative.dev/networking/pkg/http/header"
)

// Route-tag values of the 1.15 generation (the route_tag metric label).
const (
	RouteTagDisabled  = "DISABLED"
	RouteTagDefault   = "DEFAULT"
	RouteTagUndefined = "UNDEFINED"
)

// Route-tag values of the newest generation (the kn.route.tag attribute).
const (
	RouteTagOTelDisabled  = "kn:disabled"
	RouteTagOTelDefault   = "kn:default"
	RouteTagOTelUndefined = "kn:undefined"
)

// GetRouteTagNameFromRequest returns the 1.15 route tag of r: the name of
// the traffic target the ingress routed it to (CONTRACT.md §3.7).
//
// It reads the Knative-Serving-Tag and Knative-Serving-Default-Route
// request headers (first values) and returns
//   - RouteTagDisabled  when both are empty (tag routing is not in use);
//   - RouteTagDefault   when the tag is empty and default-route is not;
//   - RouteTagUndefined when a tag is present but default-route is "true"
//     (the tag named no target, so the default route served it);
//   - the tag value itself otherwise.
//
// These are the 1.15 (v0.42.2) values, used as the route_tag label of the
// request metrics. The newer generation uses the same rules with the
// values in the RouteTagOTel* constants. Headers are never modified.
func GetRouteTagNameFromRequest(r *http.Request) string {
	return RouteTagName(r, RouteTagDisabled, RouteTagDefault, RouteTagUndefined)
}

// GetOTelRouteTagFromRequest is the newest generation's route tag of r:
// the same rules with the values kn:disabled, kn:default, kn:undefined.
func GetOTelRouteTagFromRequest(r *http.Request) string {
	return RouteTagName(r, RouteTagOTelDisabled, RouteTagOTelDefault, RouteTagOTelUndefined)
}

// RouteTagName applies the route-tag rules of GetRouteTagNameFromRequest
// with the given values for the three special cases.
func RouteTagName(r *http.Request, disabled, def, undefined string) string {
	name := headerFirst(r.Header, netheader.RouteTagKey)
	isDefault := headerFirst(r.Header, netheader.DefaultRouteKey)
	switch {
	case name == "" && isDefault == "":
		return disabled
	case name == "":
		return def
	case isDefault == "true":
		return undefined
	default:
		return name
	}
}
