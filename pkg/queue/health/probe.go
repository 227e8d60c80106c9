package health

import (
	"context"
	"net"
)

// KubeProbeUserAgent is the User-Agent of readiness probe requests to the
// user container. Knative builds it as kube-probe/<major>/<minor> without ever
// setting the version, so kubelet-compatible apps see it literally
// (CONTRACT.md §4.3).
const KubeProbeUserAgent = "kube-probe//"

// grpcGoVersion is the grpc-go release whose client Knative's gRPC readiness
// probe is; grpc-go appends " grpc-go/<version>" to the User-Agent an
// application sets. The tests check it against the grpc-go in go.mod (the
// binary does not link grpc-go).
const grpcGoVersion = "1.85.0"

// GRPCProbeUserAgent is the User-Agent of gRPC readiness probe calls, as
// Knative's grpc-go client sends it (issue 15: the differential check saw
// "kube-probe// grpc-go/<version>").
const GRPCProbeUserAgent = KubeProbeUserAgent + " grpc-go/" + grpcGoVersion

// TCPProbe opens a TCP connection to addr (host:port) and closes it again.
// It is ready when the connection is established; ctx bounds the dial.
func TCPProbe(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	_ = c.Close() // the connection was made; that is the answer
	return nil
}
