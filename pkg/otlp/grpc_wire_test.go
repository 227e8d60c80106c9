package otlp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Responses grpc-go's server never sends, from a plain net/http h2c server:
// proxies answering for the collector, broken or hostile servers.

// wireReply is one response of the h2c test server.
type wireReply struct {
	status   int
	header   map[string]string
	body     []byte
	trailers map[string]string
}

func grpcFrame(flag byte, msg []byte) []byte {
	b := []byte{flag, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

var (
	grpcCT = map[string]string{"Content-Type": "application/grpc"}
	grpcOK = wireReply{status: 200, header: grpcCT, trailers: map[string]string{"Grpc-Status": "0"}}
)

func statusDetails(t testing.TB, code int32, delay time.Duration, pad bool) string {
	ri, err := anypb.New(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		t.Fatal(err)
	}
	b := mustMarshal(t, &spb.Status{Code: code, Details: []*anypb.Any{ri}})
	if pad {
		return base64.StdEncoding.EncodeToString(b)
	}
	return base64.RawStdEncoding.EncodeToString(b)
}

func TestGRPCWire(t *testing.T) {
	verifyNoLeaks(t)
	tests := []struct {
		name         string
		replies      []wireReply
		wantErr      string
		wantCode     GRPCCode
		wantAttempts int
		wantWaits    []time.Duration
	}{
		{name: "ok with trailers", replies: []wireReply{grpcOK}, wantAttempts: 1},
		{name: "ok content-type +proto", replies: []wireReply{{status: 200, header: map[string]string{"Content-Type": "application/grpc+proto"}, trailers: map[string]string{"Grpc-Status": "0"}}}, wantAttempts: 1},
		{
			name: "proxy 503 is UNAVAILABLE", replies: []wireReply{{status: 503, body: []byte("upstream down")}, grpcOK},
			wantAttempts: 2, wantWaits: []time.Duration{5 * time.Second},
		},
		{
			name: "proxy 404 is UNIMPLEMENTED", replies: []wireReply{{status: 404}},
			wantErr: "collector answered gRPC status UNIMPLEMENTED (12): HTTP status 404 Not Found", wantCode: CodeUnimplemented, wantAttempts: 1,
		},
		{
			name: "HTML page is UNKNOWN", replies: []wireReply{{status: 200, header: map[string]string{"Content-Type": "text/html"}, body: []byte("<html>")}},
			wantErr: `collector answered gRPC status UNKNOWN (2): response content-type "text/html" is not gRPC`, wantCode: CodeUnknown, wantAttempts: 1,
		},
		{
			name: "trailers-only UNAVAILABLE", replies: []wireReply{{status: 200, header: map[string]string{"Content-Type": "application/grpc", "Grpc-Status": "14", "Grpc-Message": "going%20away%"}}, grpcOK},
			wantAttempts: 2, wantWaits: []time.Duration{5 * time.Second},
		},
		{
			name: "trailers-only PERMISSION_DENIED", replies: []wireReply{{status: 200, header: map[string]string{"Content-Type": "application/grpc", "Grpc-Status": "7", "Grpc-Message": "not%20you%21"}}},
			wantErr: "collector answered gRPC status PERMISSION_DENIED (7): not you!", wantCode: CodePermissionDenied, wantAttempts: 1,
		},
		{
			name: "no trailers is INTERNAL", replies: []wireReply{{status: 200, header: grpcCT}},
			wantErr: "collector answered gRPC status INTERNAL (13): server closed the stream without sending trailers", wantCode: CodeInternal, wantAttempts: 1,
		},
		{
			name: "malformed grpc-status", replies: []wireReply{{status: 200, header: grpcCT, trailers: map[string]string{"Grpc-Status": "fourteen"}}},
			wantErr: `collector answered gRPC status INTERNAL (13): malformed grpc-status "fourteen"`, wantCode: CodeInternal, wantAttempts: 1,
		},
		{
			name: "unknown code not retried", replies: []wireReply{{status: 200, header: grpcCT, trailers: map[string]string{"Grpc-Status": "99"}}},
			wantErr: "collector answered gRPC status code 99", wantCode: 99, wantAttempts: 1,
		},
		{
			name: "RESOURCE_EXHAUSTED with padded RetryInfo", replies: []wireReply{
				{status: 200, header: grpcCT, trailers: map[string]string{"Grpc-Status": "8", "Grpc-Status-Details-Bin": statusDetails(t, 8, 9*time.Second, true)}}, grpcOK,
			},
			wantAttempts: 2, wantWaits: []time.Duration{9 * time.Second},
		},
		{
			name: "RESOURCE_EXHAUSTED with unpadded RetryInfo", replies: []wireReply{
				{status: 200, header: grpcCT, trailers: map[string]string{"Grpc-Status": "8", "Grpc-Status-Details-Bin": statusDetails(t, 8, 11*time.Second, false)}}, grpcOK,
			},
			wantAttempts: 2, wantWaits: []time.Duration{11 * time.Second},
		},
		{
			name: "RESOURCE_EXHAUSTED with undecodable details", replies: []wireReply{
				{status: 200, header: grpcCT, trailers: map[string]string{"Grpc-Status": "8", "Grpc-Status-Details-Bin": "!!!"}},
			},
			wantErr: "collector answered gRPC status RESOURCE_EXHAUSTED (8)", wantCode: CodeResourceExhausted, wantAttempts: 1,
		},
		{
			name: "compressed response without grpc-encoding", replies: []wireReply{{status: 200, header: grpcCT, body: grpcFrame(1, []byte("x")), trailers: map[string]string{"Grpc-Status": "0"}}},
			wantErr: `collector accepted the export but its response does not decode: compressed message with grpc-encoding ""`, wantAttempts: 1,
		},
		{
			name: "truncated response message", replies: []wireReply{{status: 200, header: grpcCT, body: grpcFrame(0, []byte("xyz"))[:6], trailers: map[string]string{"Grpc-Status": "0"}}},
			wantErr: "collector accepted the export but its response does not decode: truncated gRPC message", wantAttempts: 1,
		},
		{
			name: "response too large", replies: []wireReply{{status: 200, header: grpcCT, body: make([]byte, maxResponseSize+1), trailers: map[string]string{"Grpc-Status": "0"}}},
			wantErr: "collector answered gRPC status RESOURCE_EXHAUSTED (8): response larger than 4194304 bytes", wantCode: CodeResourceExhausted, wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				n := rec.add(received{method: r.Method, path: r.URL.Path, proto: r.Proto, header: r.Header.Clone(), body: b})
				reply := tt.replies[min(n, len(tt.replies))-1]
				for k, v := range reply.header {
					w.Header().Set(k, v)
				}
				for k := range reply.trailers {
					w.Header().Add("Trailer", k)
				}
				w.WriteHeader(reply.status)
				_, _ = w.Write(reply.body)
				for k, v := range reply.trailers {
					w.Header().Set(k, v)
				}
			}))
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			defer srv.Close()
			c, clk := newTestClient(t, Traces, GRPC, srv.URL, nil, nil)
			err := c.Export(context.Background(), []byte("payload"))
			c.Close()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Export: %v", err)
				}
			} else {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("Export error = %v\nwant %q", err, tt.wantErr)
				}
				var se *StatusError
				if errors.As(err, &se) != (tt.wantCode != 0) || (se != nil && se.GRPCCode != tt.wantCode) {
					t.Errorf("StatusError = %+v, want code %v", se, tt.wantCode)
				}
			}
			if got := clk.Waits(); !reflect.DeepEqual(got, tt.wantWaits) && (len(got) > 0 || len(tt.wantWaits) > 0) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			reqs := rec.all()
			if len(reqs) != tt.wantAttempts {
				t.Fatalf("server saw %d requests, want %d", len(reqs), tt.wantAttempts)
			}
			r := reqs[0]
			if r.proto != "HTTP/2.0" || r.path != tracesExportMethod || !bytes.Equal(r.body, grpcFrame(0, []byte("payload"))) {
				t.Errorf("request %s %s %q", r.proto, r.path, r.body)
			}
			for k, want := range map[string]string{"Content-Type": "application/grpc", "Te": "trailers", "Grpc-Accept-Encoding": "gzip"} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			timeout := r.header.Get("Grpc-Timeout")
			if d, err := parseTimeout(timeout); err != nil || d <= 0 || d > DefaultTimeout {
				t.Errorf("Grpc-Timeout = %q (%v, %v)", timeout, d, err)
			}
		})
	}
}

// parseTimeout reads a grpc-timeout value as the gRPC spec defines it.
func parseTimeout(s string) (time.Duration, error) {
	if len(s) < 2 || len(s) > 9 {
		return 0, errors.New("bad length")
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	u, ok := units[s[len(s)-1]]
	if !ok {
		return 0, errors.New("bad unit")
	}
	v, err := strconv.ParseUint(s[:len(s)-1], 10, 64)
	if err != nil {
		return 0, err
	}
	if v > 0 && time.Duration(v) > (1<<63-1)/u {
		return 1<<63 - 1, nil
	}
	return time.Duration(v) * u, nil
}

func TestEncodeTimeout(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{-time.Second, "1n"},
		{0, "1n"},
		{1, "1n"},
		{99999999, "99999999n"},
		{100000000, "100000u"},
		{10 * time.Second, "10000000u"},
		{100 * time.Second, "100000m"},
		{time.Duration(1<<63 - 1), "2562048H"},
		{time.Duration(1<<63 - 2), "2562048H"},
	}
	for _, tt := range tests {
		if got := encodeTimeout(tt.in); got != tt.want {
			t.Errorf("encodeTimeout(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzEncodeTimeout checks that grpc-timeout is well-formed and never
// shorter than the time left.
func FuzzEncodeTimeout(f *testing.F) {
	for _, d := range []int64{0, 1, 99999999, 100000000, int64(10 * time.Second), 1<<63 - 1} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d int64) {
		s := encodeTimeout(time.Duration(d))
		got, err := parseTimeout(s)
		if err != nil {
			t.Fatalf("encodeTimeout(%d) = %q: %v", d, s, err)
		}
		if got < time.Duration(d) || got <= 0 {
			t.Errorf("encodeTimeout(%d) = %q, shorter", d, s)
		}
	})
}

// grpcEncodeMessage percent-encodes as the gRPC spec has servers write
// grpc-message: bytes outside printable ASCII, and '%'.
func grpcEncodeMessage(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '%' {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)>>4, 16)+strconv.FormatUint(uint64(c)&15, 16)))
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestDecodeGRPCMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"100%25", "100%"},
		{"%E2%9C%93 done", "✓ done"},
		{"lower %e2%9c%93", "lower ✓"},
		{"bad %zz escape", "bad %zz escape"},
		{"trailing %", "trailing %"},
		{"trailing %4", "trailing %4"},
		{"end %41", "end A"},
		{"%%41", "%A"},
		{"%+1", "%+1"},
	}
	for _, tt := range tests {
		if got := decodeGRPCMessage(tt.in); got != tt.want {
			t.Errorf("decodeGRPCMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzDecodeGRPCMessage checks that decoding undoes the spec's encoding,
// leaves text without '%' alone, and never grows its input.
func FuzzDecodeGRPCMessage(f *testing.F) {
	for _, s := range []string{"", "abc", "100%", "%zz", "✓\x00\r\n", "%4", "%%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := decodeGRPCMessage(grpcEncodeMessage(s)); got != s {
			t.Errorf("decodeGRPCMessage(encode(%q)) = %q", s, got)
		}
		got := decodeGRPCMessage(s)
		if len(got) > len(s) || (!strings.Contains(s, "%") && got != s) {
			t.Errorf("decodeGRPCMessage(%q) = %q", s, got)
		}
	})
}

// FuzzGRPCStatusFrom feeds arbitrary grpc-status, grpc-message and
// grpc-status-details-bin values, checking the details against the
// generated google.rpc.Status.
func FuzzGRPCStatusFrom(f *testing.F) {
	f.Add("8", "slow%20down", statusDetails(f, 8, 3*time.Second, false))
	f.Add("14", "", statusDetails(f, 14, time.Second, true))
	f.Add("x", "%", "!!")
	f.Add("4294967296", "a", "")
	f.Fuzz(func(t *testing.T, code, msg, details string) {
		h := http.Header{"Grpc-Status": {code}, "Grpc-Message": {msg}, "Grpc-Status-Details-Bin": {details}}
		st, ok := grpcStatusFrom(h)
		if !ok {
			t.Fatal("grpc-status not found")
		}
		if n, err := strconv.ParseUint(code, 10, 32); err == nil && GRPCCode(n) != st.code {
			t.Errorf("code %q read as %v", code, st.code)
		} else if err != nil && st.code != CodeInternal {
			t.Errorf("malformed code %q read as %v", code, st.code)
		}
		var want rpcStatus // details are read only with a well-formed code
		if _, err := strconv.ParseUint(code, 10, 32); err != nil {
			details = ""
		}
		if b, err := decodeBinHeader(details); err == nil && details != "" {
			if st, err := decodeStatus(b); err == nil {
				want = st
			}
		}
		if st.hasRetryInfo != want.hasRetryInfo || st.retryDelay != want.retryDelay {
			t.Errorf("details %q: retry %v %v, want %v %v", details, st.hasRetryInfo, st.retryDelay, want.hasRetryInfo, want.retryDelay)
		}
		if st.retryDelay < 0 {
			t.Errorf("negative delay %v", st.retryDelay)
		}
	})
}

func TestGRPCFirstMessage(t *testing.T) {
	gz := gzipped([]byte("hello"))
	tests := []struct {
		name     string
		body     []byte
		encoding string
		want     []byte
		wantErr  string
	}{
		{name: "none", body: nil},
		{name: "plain", body: grpcFrame(0, []byte("hello")), want: []byte("hello")},
		{name: "plain, trailing data ignored", body: append(grpcFrame(0, []byte("hello")), 0, 0), want: []byte("hello")},
		{name: "empty message", body: grpcFrame(0, nil), want: []byte{}},
		{name: "gzip", body: grpcFrame(1, gz), encoding: "gzip", want: []byte("hello")},
		{name: "gzip unannounced", body: grpcFrame(1, gz), wantErr: `compressed message with grpc-encoding ""`},
		{name: "other encoding", body: grpcFrame(1, gz), encoding: "snappy", wantErr: `compressed message with grpc-encoding "snappy"`},
		{name: "bad gzip", body: grpcFrame(1, []byte("nope")), encoding: "gzip", wantErr: "unexpected EOF"},
		{name: "bad flag", body: grpcFrame(2, nil), wantErr: "bad compressed flag 2"},
		{name: "short header", body: []byte{0, 0}, wantErr: "truncated gRPC message header"},
		{name: "short message", body: grpcFrame(0, []byte("hello"))[:7], wantErr: "truncated gRPC message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := grpcFirstMessage(tt.body, tt.encoding)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("grpcFirstMessage = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// FuzzGRPCFirstMessage checks that any response body decodes or fails
// cleanly, within the size bound, and that a well-formed frame reads back.
func FuzzGRPCFirstMessage(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(grpcFrame(0, []byte("hello")), false)
	f.Add(grpcFrame(1, gzipped([]byte("hello"))), true)
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, true)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		enc := ""
		if gz {
			enc = "gzip"
		}
		if msg, err := grpcFirstMessage(body, enc); err == nil && len(msg) > max(len(body), maxResponseSize) {
			t.Errorf("message of %d bytes", len(msg))
		}
		if len(body) <= maxResponseSize {
			msg, err := grpcFirstMessage(grpcFrame(0, body), enc)
			if err != nil || !bytes.Equal(msg, body) {
				t.Errorf("frame of %q read as %q, %v", body, msg, err)
			}
		}
	})
}
