// Package queue holds the queue-specific layers of the request path: the
// concurrency breaker, the proxy handler (autoscaler stats, breaker, Host
// rewrite), the Forwarded shim, the route-tag computation and the constants
// shared with Knative's queue-proxy (paths, directories, names).
package queue

const (
	// Name is the name of the queue-proxy container as Knative's reconciler
	// creates it; it is also the body of a successful health probe.
	Name = "queue"

	// RequestQueueDrainPath is the admin-server path that the user
	// container's preStop hook calls to wait for the drain to finish.
	RequestQueueDrainPath = "/wait-for-drain"

	// CertDirectory is where Knative mounts the serving certificate
	// (tls.crt, tls.key) when system-internal TLS is enabled.
	CertDirectory = "/var/lib/knative/certs"

	// PodInfoDirectory is where the downward-API pod information is
	// mounted when the queueproxy.mount-podinfo feature is on.
	PodInfoDirectory = "/etc/podinfo"

	// PodInfoAnnotationsFilename is the file of pod annotations inside
	// PodInfoDirectory.
	PodInfoAnnotationsFilename = "annotations"

	// TokenDirectory holds projected service-account tokens, one file per
	// audience, for queue-proxy extensions.
	TokenDirectory = "/var/run/secrets/tokens"
)
