package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The gRPC transport: one unary call per attempt, spoken over net/http's
// HTTP/2 client as the gRPC-over-HTTP/2 spec lays it out (PROTOCOL-HTTP2.md
// in grpc/grpc). The request is a POST to /<service>/<method> with
// content-type application/grpc, te: trailers, grpc-timeout from the
// attempt's deadline, and one length-prefixed message (1 byte compressed
// flag, 4 bytes big-endian length; flagged and gzipped when grpc-encoding
// is gzip). The status comes from the trailers, or from the headers of a
// trailers-only response; a response that is not gRPC at all gets the code
// the spec maps its HTTP status to. Retried, as by the OpenTelemetry Go
// exporters: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
// UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED only when
// grpc-status-details-bin carries a google.rpc.RetryInfo, whose delay is
// honoured for all of them.

// GRPCCode is a gRPC status code.
type GRPCCode uint32

// The gRPC status codes this package tells apart.
const (
	CodeOK                GRPCCode = 0
	CodeCanceled          GRPCCode = 1
	CodeUnknown           GRPCCode = 2
	CodeDeadlineExceeded  GRPCCode = 4
	CodePermissionDenied  GRPCCode = 7
	CodeResourceExhausted GRPCCode = 8
	CodeAborted           GRPCCode = 10
	CodeOutOfRange        GRPCCode = 11
	CodeUnimplemented     GRPCCode = 12
	CodeInternal          GRPCCode = 13
	CodeUnavailable       GRPCCode = 14
	CodeDataLoss          GRPCCode = 15
	CodeUnauthenticated   GRPCCode = 16
)

// grpcMessageHeaderBytes is the length prefix of a gRPC message: the
// compressed flag and a 4-byte big-endian length.
const grpcMessageHeaderBytes = 5

var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// String is the code's name and number, e.g. "UNAVAILABLE (14)".
func (c GRPCCode) String() string {
	n := strconv.FormatUint(uint64(c), 10)
	if int(c) < len(codeNames) {
		return codeNames[c] + " (" + n + ")"
	}
	return "code " + n
}

// grpcHeader sets the protocol's request headers.
func grpcHeader(h http.Header, gzipped bool) {
	h.Set("Content-Type", "application/grpc")
	h.Set("Te", "trailers")
	h.Set("Grpc-Accept-Encoding", "gzip")
	h.Del("Grpc-Timeout")
	h.Del("Grpc-Encoding")
	if gzipped {
		h.Set("Grpc-Encoding", "gzip")
	}
}

// grpcMetadataValue is how a header value goes on the wire as gRPC
// metadata: binary (-bin) keys are base64-encoded, as grpc-go does.
func grpcMetadataValue(name, value string) string {
	if isBinaryKey(name) {
		return base64.RawStdEncoding.EncodeToString([]byte(value))
	}
	return value
}

func (c *Client) grpcAttempt(ctx context.Context, payload []byte) error {
	if uint64(len(payload)) > math.MaxUint32 {
		return errors.New("otlp: request of " + strconv.Itoa(len(payload)) + " bytes is too large for gRPC")
	}
	prefix := make([]byte, grpcMessageHeaderBytes)
	if c.cfg.Compression == Gzip {
		prefix[0] = 1
	}
	binary.BigEndian.PutUint32(prefix[1:], uint32(len(payload)))
	body := func() io.ReadCloser {
		return io.NopCloser(io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(payload)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.urlStr, body())
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(prefix) + len(payload))
	req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
	req.Header = c.header.Clone()
	if deadline, ok := ctx.Deadline(); ok {
		req.Header.Set("Grpc-Timeout", encodeTimeout(time.Until(deadline)))
	}
	resp, err := c.do(req)
	if err != nil {
		return transportError(c.url, err)
	}
	defer resp.Body.Close()
	return c.grpcResponse(resp)
}

// grpcResponse reads a gRPC response to its trailers and returns the
// attempt's result.
func (c *Client) grpcResponse(resp *http.Response) error {
	if st, ok := grpcStatusFrom(resp.Header); ok || resp.StatusCode != http.StatusOK {
		// A trailers-only response, or not gRPC at all.
		_, _ = readBounded(resp.Body)
		if !ok {
			st = grpcStatus{code: httpToGRPC(resp.StatusCode), message: "HTTP status " + resp.Status}
		}
		return grpcStatusError(resp.StatusCode, st)
	}
	if ct := resp.Header.Get("Content-Type"); !isGRPCContentType(ct) {
		_, _ = readBounded(resp.Body)
		return grpcStatusError(resp.StatusCode, grpcStatus{code: CodeUnknown, message: "response content-type " + strconv.Quote(ct) + " is not gRPC"})
	}
	body, err := readBounded(resp.Body)
	if err != nil {
		if len(body) == maxResponseSize {
			return grpcStatusError(resp.StatusCode, grpcStatus{code: CodeResourceExhausted, message: err.Error()})
		}
		// The stream broke (reset, GOAWAY, connection lost).
		return transportError(c.url, err)
	}
	st, ok := grpcStatusFrom(resp.Trailer)
	if !ok {
		return grpcStatusError(resp.StatusCode, grpcStatus{code: CodeInternal, message: "server closed the stream without sending trailers"})
	}
	if st.code != CodeOK {
		return grpcStatusError(resp.StatusCode, st)
	}
	msg, err := grpcFirstMessage(body, resp.Header.Get("Grpc-Encoding"))
	if err != nil {
		return errors.New("collector accepted the export but its response does not decode: " + err.Error())
	}
	return c.partialSuccessResult(msg)
}

// grpcStatus is a call's outcome as the headers or trailers state it.
type grpcStatus struct {
	code         GRPCCode
	message      string
	retryDelay   time.Duration
	hasRetryInfo bool
}

// grpcStatusFrom reads grpc-status, grpc-message and
// grpc-status-details-bin; ok is false without grpc-status. Details that do
// not decode are ignored: the status stands without them.
func grpcStatusFrom(h http.Header) (st grpcStatus, ok bool) {
	v, ok := h["Grpc-Status"]
	if !ok || len(v) == 0 {
		return grpcStatus{}, false
	}
	code, err := strconv.ParseUint(v[0], 10, 32)
	if err != nil {
		return grpcStatus{code: CodeInternal, message: "malformed grpc-status " + strconv.Quote(v[0])}, true
	}
	st = grpcStatus{code: GRPCCode(code), message: decodeGRPCMessage(h.Get("Grpc-Message"))}
	if d := h.Get("Grpc-Status-Details-Bin"); d != "" {
		if b, err := decodeBinHeader(d); err == nil {
			if rs, err := decodeStatus(b); err == nil {
				st.retryDelay, st.hasRetryInfo = rs.retryDelay, rs.hasRetryInfo
			}
		}
	}
	return st, true
}

// grpcStatusError is the attempt's error for a status other than OK.
func grpcStatusError(httpStatus int, st grpcStatus) error {
	err := &StatusError{Protocol: GRPC, HTTPStatus: httpStatus, GRPCCode: st.code, Message: st.message}
	switch st.code {
	case CodeCanceled, CodeDeadlineExceeded, CodeAborted, CodeOutOfRange, CodeUnavailable, CodeDataLoss:
		return retryable(err, st.retryDelay)
	case CodeResourceExhausted:
		if st.hasRetryInfo {
			return retryable(err, st.retryDelay)
		}
	}
	return err
}

// httpToGRPC maps the HTTP status of a response that is not gRPC to a
// code (gRPC's http-grpc-status-mapping.md).
func httpToGRPC(status int) GRPCCode {
	switch status {
	case http.StatusBadRequest:
		return CodeInternal
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusNotFound:
		return CodeUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	return CodeUnknown
}

func isGRPCContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// grpcFirstMessage returns the response message in body (nil if there is
// none), decompressed.
func grpcFirstMessage(body []byte, encoding string) ([]byte, error) {
	if len(body) == 0 {
		return nil, nil
	}
	if len(body) < grpcMessageHeaderBytes {
		return nil, errors.New("truncated gRPC message header")
	}
	n := binary.BigEndian.Uint32(body[1:grpcMessageHeaderBytes])
	if uint64(n) > uint64(len(body)-grpcMessageHeaderBytes) {
		return nil, errors.New("truncated gRPC message")
	}
	msg := body[grpcMessageHeaderBytes : grpcMessageHeaderBytes+int(n)]
	switch body[0] {
	case 0:
		return msg, nil
	case 1:
		if encoding != "gzip" {
			return nil, errors.New("compressed message with grpc-encoding " + strconv.Quote(encoding))
		}
		zr, err := gzip.NewReader(bytes.NewReader(msg))
		if err != nil {
			return nil, err
		}
		return readBounded(zr)
	}
	return nil, errors.New("bad compressed flag " + strconv.Itoa(int(body[0])))
}

// decodeGRPCMessage undoes grpc-message's percent-encoding: "%" and two
// hex digits is a byte; any other "%" stands for itself.
func decodeGRPCMessage(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeBinHeader decodes a -bin header value: base64, padded or not.
func decodeBinHeader(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// encodeTimeout writes d as a grpc-timeout value: at most 8 digits and a
// unit, rounded up to the finest unit that fits.
func encodeTimeout(d time.Duration) string {
	if d <= 0 {
		return "1n"
	}
	units := [...]struct {
		d    time.Duration
		name string
	}{
		{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"},
		{time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"},
	}
	const maxValue = 99999999
	for _, u := range units {
		v := d / u.d
		if d%u.d != 0 {
			v++
		}
		if v <= maxValue {
			return strconv.FormatInt(int64(v), 10) + u.name
		}
	}
	return strconv.Itoa(maxValue) + "H"
}
