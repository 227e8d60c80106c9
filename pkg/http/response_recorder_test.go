package http

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestResponseRecorder(t *testing.T) {
	cases := []struct {
		name      string
		handler   func(w http.ResponseWriter)
		wantCode  int
		wantSize  int64
		wantWired int // what the wrapped recorder saw
	}{
		{"no WriteHeader is 200", func(w http.ResponseWriter) { w.Write([]byte("hello")) }, 200, 5, 200},
		{"explicit status", func(w http.ResponseWriter) { w.WriteHeader(503); w.Write([]byte("x")) }, 503, 1, 503},
		{"first status wins", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }, 404, 0, 404},
		{"write then status", func(w http.ResponseWriter) { w.Write([]byte("ab")); w.WriteHeader(500) }, 200, 2, 200},
		// httptest.ResponseRecorder keeps the first code it sees, even a 1xx.
		{"1xx not recorded", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(201) }, 201, 0, 103},
		{"flush starts the response", func(w http.ResponseWriter) { w.(http.Flusher).Flush(); w.WriteHeader(500) }, 200, 0, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := httptest.NewRecorder()
			rr := NewResponseRecorder(inner, http.StatusOK)
			tc.handler(rr)
			if rr.ResponseCode != tc.wantCode || rr.ResponseSize != tc.wantSize || inner.Code != tc.wantWired {
				t.Errorf("code %d size %d inner %d; want %d %d %d", rr.ResponseCode, rr.ResponseSize, inner.Code, tc.wantCode, tc.wantSize, tc.wantWired)
			}
			if http.NewResponseController(rr).Flush() != nil {
				t.Error("ResponseController cannot flush through Unwrap")
			}
		})
	}
}

type hijackWriter struct {
	*httptest.ResponseRecorder
	err         error
	wroteHeader int
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, h.err }
func (h *hijackWriter) WriteHeader(code int)                         { h.wroteHeader++ }

func TestResponseRecorderHijack(t *testing.T) {
	for _, tc := range []struct {
		name             string
		err              error
		wantWriteHeaders int
	}{
		{"successful hijack ignores WriteHeader", nil, 0},
		{"failed hijack keeps WriteHeader", errors.New("no"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &hijackWriter{ResponseRecorder: httptest.NewRecorder(), err: tc.err}
			rr := NewResponseRecorder(w, http.StatusOK)
			if _, _, err := rr.Hijack(); err != tc.err {
				t.Fatalf("Hijack error %v, want %v", err, tc.err)
			}
			rr.WriteHeader(http.StatusBadGateway)
			if w.wroteHeader != tc.wantWriteHeaders {
				t.Errorf("inner WriteHeader called %d times, want %d", w.wroteHeader, tc.wantWriteHeaders)
			}
		})
	}
	rr := NewResponseRecorder(httptest.NewRecorder(), 200)
	if _, _, err := rr.Hijack(); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Hijack on a non-hijacker: %v, want ErrNotSupported", err)
	}
}
