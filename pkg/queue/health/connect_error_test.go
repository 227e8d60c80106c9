package health

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestConnectError: for a closed port, ConnectError of the dial error
// reads exactly as the probe's own error and keeps the dial error.
func TestConnectError(t *testing.T) {
	addr := deadAddr(t)
	host, port := hostPort(t, addr)
	hp, err := NewHTTPProbe(HTTPProbeOptions{Scheme: "HTTP", Host: host, Port: port, Path: "ready"})
	if err != nil {
		t.Fatal(err)
	}
	gp, err := NewGRPCProbe(addr, "app")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		probe   func(context.Context) error
		connErr func(error) error
	}{
		{"http", hp.Probe, hp.ConnectError},
		{"grpc", gp.Probe, gp.ConnectError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialErr := TCPProbe(context.Background(), addr)
			probeErr := tt.probe(context.Background())
			if dialErr == nil || probeErr == nil {
				t.Fatalf("dial %v, probe %v; want errors for a closed port", dialErr, probeErr)
			}
			got := tt.connErr(dialErr)
			if got.Error() != probeErr.Error() {
				t.Errorf("ConnectError = %q, want the probe's %q", got, probeErr)
			}
			var op *net.OpError
			if !errors.Is(got, dialErr) || !errors.As(got, &op) || op.Op != "dial" {
				t.Errorf("ConnectError %v does not wrap the dial error", got)
			}
		})
	}
}
