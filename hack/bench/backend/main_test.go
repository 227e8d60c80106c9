package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestServe(t *testing.T) {
	for _, tc := range []struct {
		target   string
		wantCode int
		wantBody string
	}{
		{"/", http.StatusOK, "ok"},
		{"/anything?ms=5", http.StatusOK, "ok"},
		{"/sleep?ms=0", http.StatusOK, "ok"},
		{"/sleep?ms=1", http.StatusOK, "ok"},
		{"/sleep", http.StatusBadRequest, ""},
		{"/sleep?ms=x", http.StatusBadRequest, ""},
		{"/sleep?ms=-1", http.StatusBadRequest, ""},
		{"/sleep?ms=60001", http.StatusBadRequest, ""},
	} {
		w := httptest.NewRecorder()
		serve(w, httptest.NewRequest(http.MethodGet, tc.target, nil))
		if w.Code != tc.wantCode {
			t.Errorf("%s: status %d, want %d", tc.target, w.Code, tc.wantCode)
		}
		if tc.wantBody != "" && w.Body.String() != tc.wantBody {
			t.Errorf("%s: body %q, want %q", tc.target, w.Body.String(), tc.wantBody)
		}
	}
}
