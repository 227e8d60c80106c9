#!/usr/bin/env bash
# Runs queue-proxy on :8012 in front of the demo user app (test/app) on :8080,
# with the environment Knative's reconciler would set. Ctrl-C stops both
# (the proxy drains for QP_DRAIN_QUIET_PERIOD first, 2s here; Knative uses 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
USER_PORT=${USER_PORT:-8080}
QUEUE_SERVING_PORT=${QUEUE_SERVING_PORT:-8012}

"$BIN/demo-app" -port "$USER_PORT" &
app=$!

export SERVING_NAMESPACE=default SERVING_SERVICE=hello SERVING_CONFIGURATION=hello \
  SERVING_REVISION=hello-00001 SERVING_POD=hello-00001-deployment-demo SERVING_POD_IP=127.0.0.1 \
  QUEUE_SERVING_PORT QUEUE_SERVING_TLS_PORT=8112 USER_PORT \
  CONTAINER_CONCURRENCY=${CONTAINER_CONCURRENCY:-10} REVISION_TIMEOUT_SECONDS=${REVISION_TIMEOUT_SECONDS:-300} \
  SERVING_LOGGING_CONFIG= SERVING_LOGGING_LEVEL=${SERVING_LOGGING_LEVEL:-info} \
  SERVING_READINESS_PROBE="{\"tcpSocket\":{\"port\":$USER_PORT,\"host\":\"127.0.0.1\"},\"successThreshold\":1}" \
  QP_DRAIN_QUIET_PERIOD=${QP_DRAIN_QUIET_PERIOD:-2s}
"$BIN/queue-proxy" &
qp=$!

stop() {
  kill -TERM "$qp" 2>/dev/null || true
  wait "$qp" 2>/dev/null || true
  kill -TERM "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
}
trap stop EXIT INT TERM

for _ in $(seq 50); do
  if curl -fsS -o /dev/null -H 'K-Network-Probe: queue' -A 'Knative-Activator-Probe' "http://127.0.0.1:$QUEUE_SERVING_PORT/"; then
    break
  fi
  sleep 0.1
done

cat <<TXT

queue-proxy is listening on :$QUEUE_SERVING_PORT in front of the demo app on :$USER_PORT. Try:

  curl -i http://127.0.0.1:$QUEUE_SERVING_PORT/
  curl -i -H 'K-Network-Probe: queue' -A 'Knative-Activator-Probe' http://127.0.0.1:$QUEUE_SERVING_PORT/   # activator probe
  curl --http2 -i http://127.0.0.1:$QUEUE_SERVING_PORT/headers                                             # h2c upgrade
  curl -sN http://127.0.0.1:$QUEUE_SERVING_PORT/stream?n=5                                                  # streaming
  curl -s http://127.0.0.1:9090/metrics | od -c | head                                                      # autoscaler Stat (protobuf)
  curl -s -H 'Accept: text/plain' http://127.0.0.1:8023/debug/stats                                        # live figures and the startup timeline
  curl -s http://127.0.0.1:8023/debug/config                                                               # the resolved configuration
  curl -s http://127.0.0.1:8022/healthz                                                                    # the proxy's own liveness

Ctrl-C to stop.
TXT
wait "$qp"
