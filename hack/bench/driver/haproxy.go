package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// haproxyName is HAProxy's row in the report.
const haproxyName = "HAProxy"

// haproxyConfig renders the HAProxy reference configuration: one thread,
// plain HTTP/1.1 keep-alive to the clients and to the backend, the client's
// address appended to X-Forwarded-For (what queue-proxy adds too), and no
// logging, listening on 127.0.0.1:port in front of 127.0.0.1:backendPort.
//
// Upstream connections are shared with "http-reuse always": any request may
// take any idle backend connection, as http.Transport's idle pool (behind
// the bare proxy and queue-proxy) lets it. HAProxy's default, "safe", sends
// the first request of every client connection over a connection of its
// own, which those pools never do. The risk "always" takes, a backend
// closing an idle connection just as it is reused, does not arise here:
// the backend never times out idle connections.
//
// The timeouts are far above a paced request's 5 ms pause and a 64-connection
// queue's latency; maxconn leaves room for 64 wrk connections and probes.
func haproxyConfig(port, backendPort int) string {
	return fmt.Sprintf(`# Written by hack/bench/driver: the HAProxy reference row of make bench.
global
    nbthread 1
    maxconn 1024
    # No "log" line: nothing is logged.

defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse always
    maxconn 1024
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend bench
    bind 127.0.0.1:%d
    default_backend app

backend app
    server app 127.0.0.1:%d
`, port, backendPort)
}

// haproxyPath resolves -haproxy to the binary's path; it returns "" and why
// when the HAProxy row is skipped (switched off, or no such binary).
func haproxyPath(bin string) (path, why string) {
	if bin == "" {
		return "", "switched off (HAPROXY=0)"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Sprintf("%s not found (apt-get install -y haproxy)", bin)
	}
	return path, ""
}

// startupKinds lists the targets whose startup is measured: haproxy only
// when its binary was found (haproxy is its path, or "").
func startupKinds(haproxy string) []string {
	kinds := []string{"direct", "bare", "qp"}
	if haproxy != "" {
		kinds = append(kinds, "haproxy")
	}
	return kinds
}

// haproxyVersion runs `haproxy -v` and returns the version it names.
func haproxyVersion(path string) (string, error) {
	out, err := exec.Command(path, "-v").Output()
	if err != nil {
		return "", fmt.Errorf("%s -v: %w", path, err)
	}
	return parseHAProxyVersion(string(out))
}

// parseHAProxyVersion reads the version from `haproxy -v` output, whose
// first line is "HAProxy version 2.6.12-1+deb12u4 2023/12/16 - https://...".
func parseHAProxyVersion(out string) (string, error) {
	line, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(line)
	if len(f) < 3 || f[1] != "version" {
		return "", errors.New("unexpected haproxy -v output: " + line)
	}
	return f[2], nil
}

// launchHAProxy writes haproxy.cfg into the out dir and starts HAProxy on
// it in the foreground (-db), pinned to the proxy CPU. Without
// master-worker mode it is one process, so the PID measured is the one
// serving.
func (b *bench) launchHAProxy(backendPort int) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(b.o.outDir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(port, backendPort)), 0o644); err != nil {
		return nil, err
	}
	return b.launch("haproxy", b.o.proxyCPU, b.haproxy, []string{"-f", cfg, "-db"}, baseEnv(), port)
}

func (b *bench) startHAProxy(backendPort int) (*child, error) {
	return b.ready(b.launchHAProxy(backendPort))
}

// haproxyInfo is what the report says about the HAProxy row.
type haproxyInfo struct {
	version string // haproxy -v's, when it ran
	skipped string // why it did not run, when it did not
}

// String describes how HAProxy ran, or why it did not.
func (h haproxyInfo) String() string {
	if h.version == "" {
		return "no HAProxy row: " + h.skipped
	}
	return "HAProxy " + h.version + " with one thread, keep-alive to clients and backend (http-reuse always), X-Forwarded-For added, no logging (haproxy.cfg in the out dir)"
}
