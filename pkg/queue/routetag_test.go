package queue

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGetRouteTagNameFromRequest(t *testing.T) {
	tests := []struct {
		name string
		hdr  http.Header
		want string
	}{
		{"no headers", http.Header{}, RouteTagDisabled},
		{"both empty values", http.Header{"Knative-Serving-Tag": {""}, "Knative-Serving-Default-Route": {""}}, RouteTagDisabled},
		{"default route true, no tag", http.Header{"Knative-Serving-Default-Route": {"true"}}, RouteTagDefault},
		{"default route false, no tag", http.Header{"Knative-Serving-Default-Route": {"false"}}, RouteTagDefault},
		{"default route any value, no tag", http.Header{"Knative-Serving-Default-Route": {"x"}}, RouteTagDefault},
		{"tag with default route true", http.Header{"Knative-Serving-Tag": {"blue"}, "Knative-Serving-Default-Route": {"true"}}, RouteTagUndefined},
		{"tag with default route false", http.Header{"Knative-Serving-Tag": {"blue"}, "Knative-Serving-Default-Route": {"false"}}, "blue"},
		{"tag with default route True (case-sensitive)", http.Header{"Knative-Serving-Tag": {"blue"}, "Knative-Serving-Default-Route": {"True"}}, "blue"},
		{"tag only", http.Header{"Knative-Serving-Tag": {"green"}}, "green"},
		{"first tag value wins", http.Header{"Knative-Serving-Tag": {"a", "b"}}, "a"},
		{"first default-route value wins", http.Header{"Knative-Serving-Tag": {"a"}, "Knative-Serving-Default-Route": {"false", "true"}}, "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.Header = tc.hdr
			before := tc.hdr.Clone()
			if got := GetRouteTagNameFromRequest(r); got != tc.want {
				t.Errorf("GetRouteTagNameFromRequest() = %q, want %q", got, tc.want)
			}
			if len(r.Header) != len(before) {
				t.Errorf("headers changed: %v, want %v", r.Header, before)
			}
		})
	}
}

func TestRouteTagConstants(t *testing.T) {
	tests := []struct{ got, want string }{
		{RouteTagDisabled, "DISABLED"},
		{RouteTagDefault, "DEFAULT"},
		{RouteTagUndefined, "UNDEFINED"},
		{RouteTagOTelDisabled, "kn:disabled"},
		{RouteTagOTelDefault, "kn:default"},
		{RouteTagOTelUndefined, "kn:undefined"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("constant = %q, want %q", tc.got, tc.want)
		}
	}
}

func TestGetOTelRouteTagFromRequest(t *testing.T) {
	tests := []struct {
		hdr  http.Header
		want string
	}{
		{http.Header{}, "kn:disabled"},
		{http.Header{"Knative-Serving-Default-Route": {"false"}}, "kn:default"},
		{http.Header{"Knative-Serving-Tag": {"blue"}, "Knative-Serving-Default-Route": {"true"}}, "kn:undefined"},
		{http.Header{"Knative-Serving-Tag": {"blue"}}, "blue"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		r.Header = tc.hdr
		if got := GetOTelRouteTagFromRequest(r); got != tc.want {
			t.Errorf("GetOTelRouteTagFromRequest(%v) = %q, want %q", tc.hdr, got, tc.want)
		}
	}
}
