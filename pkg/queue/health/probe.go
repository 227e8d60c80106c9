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
