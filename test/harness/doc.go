// Package harness runs the real queue-proxy binary and the demo user
// container (test/app) as child processes, the way Kubernetes and Knative do,
// for the suites that test them from outside: test/e2e and the test/otel
// module.
//
// It builds both binaries once per test binary (Main), starts children with
// bounded, logged output that are killed when their test ends (Start), hands
// out free ports (FreePort, Ports), builds the environment Knative's
// reconciler gives queue-proxy (KnativeEnv, ChildEnv), and starts a whole pod
// with retries when another program takes a port first (StartApp,
// StartQueueProxy).
//
// It is test support only: no product package imports it.
package harness
