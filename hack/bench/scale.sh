#!/usr/bin/env bash
# Scale benchmark (`make bench-scale`, after `make build`): what each idle
# keep-alive connection, open websocket, echoed websocket message, h2c
# request and streamed GiB costs queue-proxy, against a bare
# httputil.ReverseProxy (and Knative's own queue-proxy with KNATIVE_QP),
# same run. The driver (`driver scale`, hack/bench/driver/scale.go) is the
# client; it runs pinned to LOAD_CPU with the backend and h2load, and
# starts each proxy afresh per section, pinned to PROXY_CPU. Each figure is
# measured once per target. Prints Markdown tables and met/MISSED lines,
# and writes them and the servers' logs to $OUT.
#
# Settings (environment):
#   QUICK=1           a smoke test (under a minute): 100 and 1000 idle
#                     connections, 20 and 200 websockets (20 echoing),
#                     2 s of echo and of each h2c load, 256 MiB streamed
#                     each way; the default is 1k and 10k connections,
#                     100 and 1k websockets (100 echoing), 10 s, 1 GiB
#                     (about 2 minutes)
#   CONNS, WEBSOCKETS comma-separated counts to hold open, ascending
#   ECHO_CONNS        websockets echoing for the CPU figure (default 100,
#                     20 with QUICK=1)
#   DURATION          length of the echo load and of each h2c load (e.g. 10s)
#   STREAM_BYTES      bytes uploaded and downloaded through each proxy
#   SETTLE            idle wait before each memory reading (default 2s)
#   KNATIVE_QP        path to Knative's queue-proxy binary: adds its row
#                     (started with the same environment; it binds its
#                     fixed admin and metrics ports, 8022 and 9090)
#   PROXY_CPU, LOAD_CPU  taskset CPU lists (default 0 and 1)
#   METRICS=0         queue-proxy without request metrics (default: on)
#   OUT               output directory (default out/bench-scale)
#   BIN               where `make build` put queue-proxy (default bin)
# Needs taskset; h2load (Debian nghttp2-client) is installed when run as
# root, and without it the h2c figures are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-bin}
OUT=${OUT:-out/bench-scale}
if [ "${QUICK:-0}" = 1 ]; then
  CONNS=${CONNS:-100,1000} WEBSOCKETS=${WEBSOCKETS:-20,200} ECHO_CONNS=${ECHO_CONNS:-20}
  DURATION=${DURATION:-2s} STREAM_BYTES=${STREAM_BYTES:-$((256 << 20))}
else
  CONNS=${CONNS:-1000,10000} WEBSOCKETS=${WEBSOCKETS:-100,1000} ECHO_CONNS=${ECHO_CONNS:-100}
  DURATION=${DURATION:-10s} STREAM_BYTES=${STREAM_BYTES:-$((1 << 30))}
fi
SETTLE=${SETTLE:-2s}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

command -v taskset >/dev/null 2>&1 || { echo "bench-scale: needs taskset (util-linux)" >&2; exit 1; }
if ! command -v h2load >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bench-scale: installing nghttp2-client (Debian package, for h2load)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null ||
    echo "bench-scale: could not install nghttp2-client; the h2c figures are skipped" >&2
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "bench-scale: only one CPU; proxies and load share it, so ratios are rough" >&2
  PROXY_CPU=0 LOAD_CPU=0
fi
[ -x "$BIN/queue-proxy" ] || { echo "bench-scale: $BIN/queue-proxy missing; run make build" >&2; exit 1; }
if [ -n "${KNATIVE_QP:-}" ] && [ ! -x "$KNATIVE_QP" ]; then
  echo "bench-scale: KNATIVE_QP=$KNATIVE_QP is not an executable file" >&2
  exit 1
fi

# Every connection is a file descriptor in the driver and in the proxy:
# raise the limit as far as allowed (the driver checks it is enough).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
for p in backend bareproxy driver; do
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$tools/$p" "./hack/bench/$p"
done

mkdir -p "$OUT"
args=(scale -qp "$BIN/queue-proxy" -backend "$tools/backend" -bare "$tools/bareproxy" -out "$OUT"
  -conns "$CONNS" -websockets "$WEBSOCKETS" -echo-conns "$ECHO_CONNS"
  -echo-duration "$DURATION" -h2c-duration "$DURATION" -stream-bytes "$STREAM_BYTES"
  -settle "$SETTLE" -proxy-cpu "$PROXY_CPU" -load-cpu "$LOAD_CPU" -knative-qp "${KNATIVE_QP:-}")
[ "${METRICS:-1}" = 0 ] && args+=(-metrics=false)
taskset -c "$LOAD_CPU" "$tools/driver" "${args[@]}"
