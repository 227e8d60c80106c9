#!/usr/bin/env bash
# Builds the queue-proxy container image from ./Dockerfile (make image).
#
#   IMAGE             the tag to build (default ghcr.io/queue-proxy/queue-proxy:dev)
#   CONTAINER_ENGINE  docker or podman (default: whichever is on PATH, docker first)
#   PLATFORM          e.g. linux/arm64 (default: the engine's own platform)
#
# Extra arguments go to "<engine> build": bash hack/image.sh --no-cache
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-ghcr.io/queue-proxy/queue-proxy:dev}
engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  for candidate in docker podman; do
    if command -v "$candidate" >/dev/null 2>&1; then
      engine=$candidate
      break
    fi
  done
fi

if [ -z "$engine" ]; then
  cat >&2 <<'MSG'
make image: no container engine found: neither docker nor podman is on PATH.

  To build the image, install Docker (BuildKit, Docker 23 or later) or Podman, or point
  CONTAINER_ENGINE at one, and run make image again.

  Without one, `make build` produces bin/queue-proxy, the same static binary the image contains
  (CGO_ENABLED=0, -trimpath, -ldflags '-s -w').
MSG
  exit 1
fi
if ! command -v "$engine" >/dev/null 2>&1; then
  echo "make image: CONTAINER_ENGINE=$engine is not on PATH" >&2
  exit 1
fi

# An installed client is not enough: docker needs its daemon, podman a working runtime.
if ! problem=$("$engine" info 2>&1 >/dev/null); then
  {
    echo "make image: $engine is installed but cannot build images here:"
    echo "$problem" | sed -n '1,5s/^/  /p'
    echo "  Start the $engine daemon (or fix its permissions), or set CONTAINER_ENGINE to another engine."
    echo "  Without one, \`make build\` produces bin/queue-proxy, the same static binary the image contains."
  } >&2
  exit 1
fi

args=(build -f Dockerfile -t "$IMAGE")
if [ -n "${PLATFORM:-}" ]; then
  args+=(--platform "$PLATFORM")
fi
echo "make image: $engine ${args[*]} $* ."
"$engine" "${args[@]}" "$@" .
echo "make image: built $IMAGE"
echo "  push it, then point Knative at it: config/knative/config-deployment-patch.yaml (README, \"Use with Knative\")"
