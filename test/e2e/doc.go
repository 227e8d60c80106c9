// Package e2e drives the real queue-proxy binary and the demo user container
// (test/app) as separate processes, the way Kubernetes and Knative do: it
// builds both, starts them with a Knative-like environment on free ports, and
// checks probes, traffic over every protocol the main port speaks, graceful
// shutdown under load, websockets across a drain, the preStop hook, a
// crashing user container and overload.
//
// Everything lives in the _test.go files; the suite runs with `go test
// ./test/e2e/` (and so with `make test`). It needs the go command on PATH (or
// in GOROOT) to build the two binaries, and only loopback networking.
package e2e
