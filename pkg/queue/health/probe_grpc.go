package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
)

// The gRPC health check is one unary call, so it is spoken here directly as
// what it is on the wire, an HTTP/2 POST over h2c, instead of importing
// google.golang.org/grpc (several MiB of binary in every pod, DESIGN.md):
//
//	POST /grpc.health.v1.Health/Check
//	content-type: application/grpc, te: trailers
//	body: 1 byte compressed flag (0), 4 bytes big-endian length,
//	      HealthCheckRequest{string service = 1}
//
// The answer is 200 with the same framing around HealthCheckResponse{enum
// status = 1}, and the RPC status in the grpc-status trailer, or in the
// header of a trailers-only answer (errors such as Unimplemented).
const (
	grpcCheckPath = "/grpc.health.v1.Health/Check"

	// maxGRPCResponse bounds the framed response read; a HealthCheckResponse
	// is a handful of bytes.
	maxGRPCResponse = 4 << 10

	// HealthCheckResponse.ServingStatus values.
	servingStatusServing = 1
)

var servingStatusNames = [...]string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

// grpcCodeNames are the gRPC status code names, indexed by code.
var grpcCodeNames = [...]string{
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
	"PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
}

const grpcCodeUnimplemented = "12"

// grpcTransport speaks h2c with prior knowledge only, without compression
// (gRPC frames its own) and without keeping connections: one connection
// per check, as kubelet's gRPC prober does.
var grpcTransport = func() *http.Transport {
	t := &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true, Protocols: new(http.Protocols)}
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}()

// GRPCProbe is a grpc.health.v1 Health/Check readiness probe, built once and
// run many times.
type GRPCProbe struct {
	tmpl *http.Request // body-less template; each attempt copies it
	body []byte        // the framed HealthCheckRequest
}

// NewGRPCProbe returns a probe of the gRPC health service at addr
// (host:port) for service ("" is the server's overall health).
func NewGRPCProbe(addr, service string) (*GRPCProbe, error) {
	u, err := url.Parse("http://" + addr + grpcCheckPath)
	if err != nil {
		return nil, err
	}
	var msg []byte
	if service != "" {
		msg = pbwire.AppendTag(msg, 1, pbwire.BytesType)
		msg = pbwire.AppendString(msg, service)
	}
	body := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)
	return &GRPCProbe{
		tmpl: &http.Request{
			Method: http.MethodPost, URL: u, Host: u.Host,
			Header: http.Header{
				"Content-Type": {"application/grpc"},
				"Te":           {"trailers"},
				"User-Agent":   {GRPCProbeUserAgent},
			},
			ContentLength: int64(len(body)),
		},
		body: body,
	}, nil
}

// Probe makes one Health/Check call within ctx. It is ready when the call
// succeeds with status SERVING.
func (p *GRPCProbe) Probe(ctx context.Context) error {
	req := p.tmpl.WithContext(ctx)
	req.Body = io.NopCloser(bytes.NewReader(p.body))
	resp, err := grpcTransport.RoundTrip(req)
	if err != nil {
		return grpcTransportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("gRPC health check: HTTP status " + strconv.Itoa(resp.StatusCode) + " (not a gRPC server?)")
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
		return errors.New("gRPC health check: response content-type " + strconv.Quote(ct) + " (not a gRPC server?)")
	}
	if st := resp.Header.Get("Grpc-Status"); st != "" { // trailers-only answer
		if st == "0" {
			return errors.New("gRPC health check: OK without a response message")
		}
		return grpcStatusError(st, resp.Header.Get("Grpc-Message"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxGRPCResponse+1))
	if err != nil {
		return grpcTransportError(ctx, err)
	}
	if st := resp.Trailer.Get("Grpc-Status"); st != "0" {
		if st == "" {
			if len(b) > maxGRPCResponse {
				return errors.New("gRPC health check: response longer than " + strconv.Itoa(maxGRPCResponse) + " bytes")
			}
			return errors.New("gRPC health check: response without grpc-status")
		}
		return grpcStatusError(st, resp.Trailer.Get("Grpc-Message"))
	}
	status, err := parseHealthResponse(b)
	if err != nil {
		return errors.New("gRPC health check: " + err.Error())
	}
	if status != servingStatusServing {
		name := "status " + strconv.FormatUint(status, 10)
		if status < uint64(len(servingStatusNames)) {
			name = servingStatusNames[status]
		}
		return errors.New("service unhealthy (responded with " + strconv.Quote(name) + ")")
	}
	return nil
}

// ConnectError returns the error Probe returns when it cannot connect to
// the server because of err, the dial error: for a port found closed by
// other means, in the probe's own words.
func (p *GRPCProbe) ConnectError(err error) error {
	return &wrappedError{"gRPC health check: ", err}
}

// parseHealthResponse returns HealthCheckResponse.status from one
// length-prefixed, uncompressed gRPC message.
func parseHealthResponse(b []byte) (uint64, error) {
	if len(b) < 5 {
		return 0, errors.New("truncated response message")
	}
	if b[0] != 0 {
		return 0, errors.New("compressed response message (none was accepted)")
	}
	n := binary.BigEndian.Uint32(b[1:5])
	msg := b[5:]
	if uint64(len(msg)) != uint64(n) {
		return 0, errors.New("response framing: length " + strconv.FormatUint(uint64(n), 10) + ", got " + strconv.Itoa(len(msg)) + " bytes")
	}
	var status uint64 // proto3 default: UNKNOWN
	for len(msg) > 0 {
		num, typ, l, err := pbwire.ConsumeTag(msg)
		if err != nil {
			return 0, err
		}
		msg = msg[l:]
		if num == 1 && typ == pbwire.VarintType {
			v, l, err := pbwire.ConsumeVarint(msg)
			if err != nil {
				return 0, err
			}
			status, msg = v, msg[l:]
			continue
		}
		if l, err = pbwire.ConsumeFieldValue(num, typ, msg); err != nil {
			return 0, err
		}
		msg = msg[l:]
	}
	return status, nil
}

// grpcStatusError describes a non-OK RPC status like grpc-go does.
func grpcStatusError(code, message string) error {
	name := "Code(" + code + ")"
	if n, err := strconv.Atoi(code); err == nil && n >= 0 && n < len(grpcCodeNames) {
		name = grpcCodeNames[n]
	}
	if m, err := url.PathUnescape(message); err == nil {
		message = m
	}
	desc := "rpc error: code = " + name + " desc = " + message
	if code == grpcCodeUnimplemented {
		return errors.New("this server does not implement the grpc health protocol (grpc.health.v1.Health): " + desc)
	}
	return errors.New("gRPC health check failed: " + desc)
}

// grpcTransportError marks errors caused by the probe's deadline.
func grpcTransportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &wrappedError{"timeout: gRPC health check did not complete within the probe timeout: ", err}
	}
	return &wrappedError{"gRPC health check: ", err}
}

// wrappedError prefixes an error it keeps for errors.Is and errors.As.
type wrappedError struct {
	prefix string
	err    error
}

func (e *wrappedError) Error() string { return e.prefix + e.err.Error() }
func (e *wrappedError) Unwrap() error { return e.err }
