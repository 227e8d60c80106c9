#!/usr/bin/env bash
# Whole-process benchmark (`make bench`, after `make build`): the backend
# alone, a bare httputil.ReverseProxy, HAProxy (one thread, as a reference)
# and queue-proxy (CONTAINER_CONCURRENCY 0 and 10) in front of it, driven by
# wrk with 1 thread over HTTP/1.1 keep-alive at 16 and 64 connections, at
# a paced 16 connections (5 ms pause), and at 16 connections to a backend
# path answering after 20 ms (/sleep?ms=20, queued behind CC=10). Proxies are pinned to one CPU, wrk and
# the backend to another.
# Prints a Markdown table of medians with ratios to the bare proxy, and
# writes it, the raw wrk output and the servers' logs to $OUT.
#
# Settings (environment):
#   QUICK=1           1 repetition of 3 s per cell (about 2 minutes);
#                     the default is 3 × 10 s (about 10 minutes)
#   REPS, DURATION    repetitions and length of one run (Go duration, e.g. 10s);
#   PAIRS, PAIR_DURATION  runs of the bare proxy and queue-proxy driven at the same
#                     time, per CPU-target load and CC (default 6 of 4s; QUICK: 2 of 3s)
#                     REPS=0 measures only startup, idle RSS and binary size
#   STARTUP_REPS      process starts measured per target (default 15)
#   PROXY_CPU, LOAD_CPU  taskset CPU lists (default 0 and 1)
#   METRICS=0         queue-proxy without request metrics (default: on)
#   TRACING           queue-proxy tracing, exported to a spans sink on
#                     LOAD_CPU that counts what it gets (the bare proxy never
#                     traces): empty (default) off; zipkin as Knative 1.15
#                     sets it up (TRACING_CONFIG_*, no OBSERVABILITY_CONFIG,
#                     so 1.15 request metrics too); otlp as the newest
#                     Knative does (OBSERVABILITY_CONFIG, http/protobuf)
#   TRACING_RATE      its sampling rate, 0 to 1 (default 1)
#   PROFILE=10s       afterwards, CPU- and alloc-profile queue-proxy (CC=0,
#                     16 conns) for that long and print the top costs
#   OUT               output directory (default out/bench, or
#                     out/bench-tracing-$TRACING with TRACING)
#   BIN               where `make build` put queue-proxy (default bin)
#   QP_ENV            space-separated KEY=VALUE added to queue-proxy's
#                     environment, e.g. "QP_UPSTREAM_PATH=generic GOGC=400"
#   HAPROXY=0         no HAProxy row; without haproxy installed (and not
#                     root to install it) the row is skipped with a note
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-bin}
TRACING=${TRACING:-}
OUT=${OUT:-out/bench${TRACING:+-tracing-$TRACING}}
if [ "${QUICK:-0}" = 1 ]; then
  REPS=${REPS:-1} DURATION=${DURATION:-3s} STARTUP_REPS=${STARTUP_REPS:-9} WARMUP=${WARMUP:-1s}
  PAIRS=${PAIRS:-2} PAIR_DURATION=${PAIR_DURATION:-3s}
else
  REPS=${REPS:-3} DURATION=${DURATION:-10s} STARTUP_REPS=${STARTUP_REPS:-15} WARMUP=${WARMUP:-2s}
  PAIRS=${PAIRS:-6} PAIR_DURATION=${PAIR_DURATION:-4s}
fi
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

# can_apt says whether missing Debian packages can be installed.
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=
# apt_install installs Debian package $1, updating the lists once.
apt_install() {
  echo "bench: installing $1 (Debian package)" >&2
  if [ -z "$apt_updated" ]; then apt-get update -qq && apt_updated=1; fi &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

if ! command -v wrk >/dev/null 2>&1; then
  if can_apt; then
    apt_install wrk
  else
    echo "bench: needs wrk: apt-get install -y wrk" >&2
    exit 1
  fi
fi
# haproxy_bin prints HAProxy's path; Debian puts it in /usr/sbin, which a
# user's PATH may lack.
haproxy_bin() { command -v haproxy || { [ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy; }; }
# HAProxy is a reference row only: its absence never fails the benchmark.
HAPROXY=${HAPROXY:-1}
if [ "$HAPROXY" != 0 ] && ! haproxy_bin >/dev/null; then
  if ! { can_apt && apt_install haproxy; }; then
    echo "bench: haproxy missing (apt-get install -y haproxy); skipping its row" >&2
  fi
fi
command -v taskset >/dev/null 2>&1 || { echo "bench: needs taskset (util-linux)" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
  echo "bench: only one CPU; proxies, wrk and the backend share it, so ratios are rough" >&2
  PROXY_CPU=0 LOAD_CPU=0
fi
[ -x "$BIN/queue-proxy" ] || { echo "bench: $BIN/queue-proxy missing; run make build" >&2; exit 1; }

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
# The bare proxy is built like queue-proxy (stripped) so that sizes compare.
for p in backend bareproxy spansink driver; do
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$tools/$p" "./hack/bench/$p"
done

mkdir -p "$OUT"
args=(-qp "$BIN/queue-proxy" -backend "$tools/backend" -bare "$tools/bareproxy"
  -paced-script hack/bench/paced.lua -out "$OUT"
  -reps "$REPS" -duration "$DURATION" -warmup "$WARMUP" -startup-reps "$STARTUP_REPS"
  -pairs "$PAIRS" -pair-duration "$PAIR_DURATION"
  -proxy-cpu "$PROXY_CPU" -load-cpu "$LOAD_CPU" -sink "$tools/spansink"
  -tracing "$TRACING" -tracing-rate "${TRACING_RATE:-1}")
[ "${METRICS:-1}" = 0 ] && args+=(-metrics=false)
if [ "$HAPROXY" = 0 ]; then args+=(-haproxy ""); else args+=(-haproxy "$(haproxy_bin || echo haproxy)"); fi
[ -n "${PROFILE:-}" ] && args+=(-profile "$PROFILE")
for kv in ${QP_ENV:-}; do args+=(-qp-env "$kv"); done
"$tools/driver" "${args[@]}"
