package http

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// defaultLogLine is the JSON the default template renders.
type defaultLogLine struct {
	HTTPRequest struct {
		RequestMethod string `json:"requestMethod"`
		RequestURL    string `json:"requestUrl"`
		RequestSize   string `json:"requestSize"`
		Status        int    `json:"status"`
		ResponseSize  string `json:"responseSize"`
		UserAgent     string `json:"userAgent"`
		RemoteIP      string `json:"remoteIp"`
		ServerIP      string `json:"serverIp"`
		Referer       string `json:"referer"`
		Latency       string `json:"latency"`
		Protocol      string `json:"protocol"`
	} `json:"httpRequest"`
	TraceID string `json:"traceId"`
}

// FuzzRequestLogDefaultTemplate sends requests with arbitrary client-chosen
// fields, parsed by net/http's own request parser as the server would, through
// the default template: it must never panic, every output must be exactly
// one line of valid JSON (and UTF-8) that decodes back to the request's
// values, and the fast renderer must write what text/template writes.
func FuzzRequestLogDefaultTemplate(f *testing.F) {
	f.Add("GET", "/foo?x=1", "HTTP/1.1", "curl/7.88.1", "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "127.0.0.1:42340", 200, 294, 0.002449831)
	f.Add("POST", "/it's/\"quoted\"/<b>?a=b&c", "HTTP/1.0", "ua \\ 'x'", "http://r/'", "", "a3ce929d0e0e4736", "[::1]:1", 503, 0, 0.002449831)
	f.Add("PUT", "/%0A%22", "HTTP/1.1", "\xff\xfe bad utf8", "\u2028", `00-"},"x":"-00`, `"injected"`, "\x00\n", 101, 10, 0.002449831)
	h, err := NewRequestLogHandler(nil, nil, DefaultRequestLogTemplate, RequestLogTemplateInputGetterFromRevision(testRevision), true)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, uri, proto, ua, referer, traceparent, b3, remoteAddr string, code, size int, latency float64) {
		raw := method + " " + uri + " " + proto + "\r\nHost: svc.example\r\nUser-Agent: " + ua + "\r\nReferer: " + referer +
			"\r\nTraceparent: " + traceparent + "\r\nX-B3-TraceId: " + b3 + "\r\n\r\n"
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // the server would have answered 400 itself
		}
		req.RemoteAddr = remoteAddr
		code = 100 + (code%900+900)%900 // a status net/http accepts
		size = (size%4096 + 4096) % 4096

		out := &lineWriter{}
		h.writer = out
		h.handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			w.Write(make([]byte, size))
		})
		h.ServeHTTP(&discardWriter{h: http.Header{}}, req) // accepts every write, like a real connection

		lines := out.all()
		if len(lines) != 1 {
			t.Fatalf("%d writes, want 1: %q", len(lines), lines)
		}
		line := lines[0]
		if strings.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("not exactly one line: %q", line)
		}
		var got defaultLogLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil || !json.Valid([]byte(line)) {
			t.Fatalf("not valid JSON (%v): %q", err, line)
		}
		wantCode := code
		if code < 200 && code != http.StatusSwitchingProtocols {
			wantCode = http.StatusOK // informational codes are not the response's status
		}
		r := got.HTTPRequest
		for _, c := range []struct{ name, got, want string }{
			{"requestMethod", r.RequestMethod, req.Method},
			{"requestUrl", r.RequestURL, string([]rune(req.RequestURI))},
			{"requestSize", r.RequestSize, strconv.FormatInt(req.ContentLength, 10)},
			{"status", strconv.Itoa(r.Status), strconv.Itoa(wantCode)},
			{"responseSize", r.ResponseSize, strconv.Itoa(size)},
			{"userAgent", r.UserAgent, string([]rune(req.UserAgent()))},
			{"remoteIp", r.RemoteIP, string([]rune(remoteAddr))},
			{"serverIp", r.ServerIP, testRevision.PodIP},
			{"referer", r.Referer, string([]rune(req.Referer()))},
			{"protocol", r.Protocol, req.Proto},
			{"traceId", got.TraceID, ExtractTraceID(req.Header)},
		} {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q (line %q)", c.name, c.got, c.want, line)
			}
		}
		if !strings.HasSuffix(r.Latency, "s") {
			t.Errorf("latency %q", r.Latency)
		}
		checkFastPath(t, req, &RequestLogResponse{Code: code, Size: size, Latency: latency})
	})
}

// checkFastPath renders one line with the default template's fast path and
// with text/template, and fails if they differ.
func checkFastPath(t *testing.T, req *http.Request, resp *RequestLogResponse) {
	t.Helper()
	var fast, slow strings.Builder
	h, err := NewRequestLogHandler(http.NotFoundHandler(), &fast, DefaultRequestLogTemplate, RequestLogTemplateInputGetterFromRevision(testRevision), true)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := h.template.Load()
	if !tmpl.isDefault {
		t.Fatal("the default template does not take the fast path")
	}
	h.write(tmpl, req, resp)
	h.writer = &slow
	h.write(&requestLogTemplate{Template: tmpl.Template}, req, resp)
	if fast.String() != slow.String() {
		t.Errorf("fast path wrote\n%q\ntext/template wrote\n%q", fast.String(), slow.String())
	}
}
