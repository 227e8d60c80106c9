package otlp

import (
	"errors"
	"math"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDecodePartialSuccess(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    partialSuccess
		wantErr bool
	}{
		{name: "empty", in: nil},
		{name: "no partial success", in: mustMarshal(t, &colmetricpb.ExportMetricsServiceResponse{})},
		{
			name: "metrics",
			in: mustMarshal(t, &colmetricpb.ExportMetricsServiceResponse{PartialSuccess: &colmetricpb.ExportMetricsPartialSuccess{
				RejectedDataPoints: 42, ErrorMessage: "too old",
			}}),
			want: partialSuccess{rejected: 42, message: "too old"},
		},
		{
			name: "traces",
			in: mustMarshal(t, &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{
				RejectedSpans: 3,
			}}),
			want: partialSuccess{rejected: 3},
		},
		{
			name: "negative count",
			in: mustMarshal(t, &colmetricpb.ExportMetricsServiceResponse{PartialSuccess: &colmetricpb.ExportMetricsPartialSuccess{
				RejectedDataPoints: -1,
			}}),
			want: partialSuccess{rejected: -1},
		},
		{
			name: "two occurrences merge",
			in: append(
				mustMarshal(t, &colmetricpb.ExportMetricsServiceResponse{PartialSuccess: &colmetricpb.ExportMetricsPartialSuccess{RejectedDataPoints: 1, ErrorMessage: "a"}}),
				mustMarshal(t, &colmetricpb.ExportMetricsServiceResponse{PartialSuccess: &colmetricpb.ExportMetricsPartialSuccess{RejectedDataPoints: 2}})...),
			want: partialSuccess{rejected: 2, message: "a"},
		},
		{name: "unknown fields skipped", in: []byte{0x10, 0x05, 0x1a, 0x01, 'x', 0x0a, 0x02, 0x08, 0x07}, want: partialSuccess{rejected: 7}},
		{name: "wrong wire type is unknown", in: []byte{0x08, 0x05}},
		{name: "inner wrong wire type is unknown", in: []byte{0x0a, 0x05, 0x08, 0x07, 0x0a, 0x01, 0x05}, want: partialSuccess{rejected: 7}},
		{name: "truncated", in: []byte{0x0a, 0x05, 0x08}, wantErr: true},
		{name: "invalid UTF-8 message", in: []byte{0x0a, 0x03, 0x12, 0x01, 0xff}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePartialSuccess(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("decodePartialSuccess error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("decodePartialSuccess = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzDecodePartialSuccess compares the decoder with the generated
// Export{Metrics,Trace}ServiceResponse types.
func FuzzDecodePartialSuccess(f *testing.F) {
	f.Add([]byte{})
	f.Add(mustMarshal(f, &colmetricpb.ExportMetricsServiceResponse{PartialSuccess: &colmetricpb.ExportMetricsPartialSuccess{RejectedDataPoints: 42, ErrorMessage: "too old"}}))
	f.Add(mustMarshal(f, &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: -5, ErrorMessage: "é"}}))
	f.Add([]byte{0x0a, 0x03, 0x12, 0x01, 0xff})
	f.Add([]byte{0x0a, 0x04, 0x0b, 0x08, 0x01, 0x0c})
	f.Add([]byte{0x10, 0x05, 0x1a, 0x01, 'x', 0x0a, 0x02, 0x08, 0x07})
	f.Add([]byte{0x0a, 0x05, 0x08, 0x07, 0x0a, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodePartialSuccess(b)
		var m colmetricpb.ExportMetricsServiceResponse
		mErr := proto.Unmarshal(b, &m)
		if (err != nil) != (mErr != nil) {
			t.Fatalf("decodePartialSuccess(%x) error = %v, proto error = %v", b, err, mErr)
		}
		if err != nil {
			return
		}
		want := partialSuccess{rejected: m.GetPartialSuccess().GetRejectedDataPoints(), message: m.GetPartialSuccess().GetErrorMessage()}
		if got != want {
			t.Fatalf("decodePartialSuccess(%x) = %+v, metrics proto = %+v", b, got, want)
		}
		var tr coltracepb.ExportTraceServiceResponse
		if err := proto.Unmarshal(b, &tr); err != nil {
			t.Fatalf("traces proto failed where metrics did not: %v", err)
		}
		if want := (partialSuccess{rejected: tr.GetPartialSuccess().GetRejectedSpans(), message: tr.GetPartialSuccess().GetErrorMessage()}); got != want {
			t.Fatalf("decodePartialSuccess(%x) = %+v, traces proto = %+v", b, got, want)
		}
	})
}

func TestDecodeStatus(t *testing.T) {
	retryInfo := func(d *durationpb.Duration) *anypb.Any { return mustAny(t, &errdetails.RetryInfo{RetryDelay: d}) }
	tests := []struct {
		name    string
		in      *spb.Status
		raw     []byte
		want    rpcStatus
		wantErr bool
	}{
		{name: "empty", raw: []byte{}},
		{name: "code and message", in: &spb.Status{Code: 8, Message: "slow down"}, want: rpcStatus{code: 8, message: "slow down"}},
		{
			name: "retry info",
			in:   &spb.Status{Code: 8, Details: []*anypb.Any{retryInfo(durationpb.New(1500 * time.Millisecond))}},
			want: rpcStatus{code: 8, retryDelay: 1500 * time.Millisecond, hasRetryInfo: true},
		},
		{
			name: "retry info after other details, first wins",
			in: &spb.Status{Code: 14, Details: []*anypb.Any{
				mustAny(t, &errdetails.ErrorInfo{Reason: "r"}),
				retryInfo(durationpb.New(2 * time.Second)),
				retryInfo(durationpb.New(3 * time.Second)),
			}},
			want: rpcStatus{code: 14, retryDelay: 2 * time.Second, hasRetryInfo: true},
		},
		{
			name: "retry info without delay",
			in:   &spb.Status{Code: 8, Details: []*anypb.Any{retryInfo(nil)}},
			want: rpcStatus{code: 8, hasRetryInfo: true},
		},
		{
			name: "negative delay is 0",
			in:   &spb.Status{Code: 8, Details: []*anypb.Any{retryInfo(&durationpb.Duration{Seconds: -5})}},
			want: rpcStatus{code: 8, hasRetryInfo: true},
		},
		{
			name: "huge delay saturates",
			in:   &spb.Status{Code: 8, Details: []*anypb.Any{retryInfo(&durationpb.Duration{Seconds: math.MaxInt64})}},
			want: rpcStatus{code: 8, retryDelay: math.MaxInt64, hasRetryInfo: true},
		},
		{
			name: "type URL with another prefix",
			in:   &spb.Status{Details: []*anypb.Any{{TypeUrl: "example.com/x/google.rpc.RetryInfo", Value: mustMarshal(t, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})}}},
			want: rpcStatus{retryDelay: time.Second, hasRetryInfo: true},
		},
		{
			name: "undecodable retry info skipped",
			in: &spb.Status{Details: []*anypb.Any{
				{TypeUrl: "type.googleapis.com/google.rpc.RetryInfo", Value: []byte{0x0a, 0x05}},
				retryInfo(durationpb.New(time.Second)),
			}},
			want: rpcStatus{retryDelay: time.Second, hasRetryInfo: true},
		},
		{name: "invalid UTF-8 message", raw: []byte{0x12, 0x01, 0xff}, wantErr: true},
		{name: "truncated", raw: []byte{0x1a, 0x05}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.raw
			if tt.in != nil {
				b = mustMarshal(t, tt.in)
			}
			got, err := decodeStatus(b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("decodeStatus error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("decodeStatus = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzDecodeStatus compares the decoder with the generated google.rpc.Status
// and with how the OpenTelemetry gRPC exporters find a RetryInfo in it
// (grpc status.Details(), the first *errdetails.RetryInfo).
func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte{})
	f.Add(mustMarshal(f, &spb.Status{Code: 8, Message: "slow down", Details: []*anypb.Any{
		mustAny(f, &errdetails.ErrorInfo{Reason: "r"}),
		mustAny(f, &errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: 1, Nanos: 5}}),
	}}))
	f.Add(mustMarshal(f, &spb.Status{Details: []*anypb.Any{mustAny(f, &errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: -1, Nanos: 2000000000}})}}))
	f.Add(mustMarshal(f, &spb.Status{Details: []*anypb.Any{mustAny(f, &errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: math.MaxInt64 / int64(time.Second), Nanos: math.MaxInt32}})}}))
	f.Add([]byte{0x12, 0x01, 0xff})
	f.Add([]byte{0x1a, 0x04, 0x0a, 0x02, 0xc3, 0x28})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeStatus(b)
		var s spb.Status
		pErr := proto.Unmarshal(b, &s)
		if (err != nil) != (pErr != nil) {
			t.Fatalf("decodeStatus(%x) error = %v, proto error = %v", b, err, pErr)
		}
		if err != nil {
			return
		}
		want := rpcStatus{code: s.Code, message: s.Message}
		for _, d := range status.FromProto(&s).Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				want.retryDelay, want.hasRetryInfo = max(ri.GetRetryDelay().AsDuration(), 0), true
				break
			}
		}
		if got != want {
			t.Fatalf("decodeStatus(%x) = %+v, want %+v", b, got, want)
		}
	})
}

func TestDurationOf(t *testing.T) {
	const maxSecs = math.MaxInt64 / int64(time.Second)
	for _, d := range []*durationpb.Duration{
		{}, {Seconds: 1}, {Nanos: 1}, {Seconds: -1, Nanos: 2e9}, {Seconds: 1, Nanos: -2e9},
		{Seconds: maxSecs, Nanos: math.MaxInt32}, {Seconds: maxSecs + 1}, {Seconds: -maxSecs, Nanos: math.MinInt32},
		{Seconds: -maxSecs - 1, Nanos: math.MaxInt32}, {Seconds: math.MinInt64}, {Seconds: math.MaxInt64, Nanos: math.MinInt32},
	} {
		if got, want := durationOf(d.Seconds, d.Nanos), max(d.AsDuration(), 0); got != want {
			t.Errorf("durationOf(%d, %d) = %v, want %v", d.Seconds, d.Nanos, got, want)
		}
	}
}

func TestPartialSuccessError(t *testing.T) {
	tests := []struct {
		err  *PartialSuccessError
		want string
	}{
		{&PartialSuccessError{Signal: Metrics, Rejected: 3, Message: "too old"}, "OTLP partial success: too old (3 metric data points rejected)"},
		{&PartialSuccessError{Signal: Traces, Rejected: 1}, "OTLP partial success: empty message (1 spans rejected)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		var target *PartialSuccessError
		if !errors.As(error(tt.err), &target) {
			t.Error("errors.As failed")
		}
	}
}
