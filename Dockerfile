# The queue-proxy image: one static, stripped binary on a distroless base, run as a non-root user.
#
#   make image                                  # docker or podman; IMAGE=... to choose the tag
#   docker build -t ghcr.io/queue-proxy/queue-proxy:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t IMAGE --push .
#
# Knative's reconciler sets no command and no args on the queue-proxy container: the pod runs the
# image's ENTRYPOINT. So the ENTRYPOINT is the proxy itself, in exec form (no shell in between, so
# SIGTERM reaches the proxy and starts its drain), and it takes no arguments: everything comes from
# the environment the reconciler sets (README, "Environment").

# Build stage. It runs on the build machine's own platform and cross-compiles for the target one
# (TARGETOS/TARGETARCH come from BuildKit or buildah), so multi-arch builds need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first, in their own layer: it is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same flags as `make build`: static (no cgo, so no libc needed at run time), reproducible
# paths (-trimpath), no symbol table or DWARF (-s -w, about a third smaller).
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags='-s -w' -o /out/queue-proxy ./cmd/queue-proxy

# Run stage: distroless "static", nonroot variant, rather than scratch. It is about 2 MiB and has no
# shell or package manager, like scratch, but it also carries what scratch would make us copy in by
# hand: CA certificates (HTTPS readiness probes verify with the system roots, and so do exporters
# that send traces or metrics over TLS), an /etc/passwd with the unprivileged user 65532, and tzdata.
# For production, pin it by digest (gcr.io/distroless/static:nonroot@sha256:...).
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/queue-proxy /queue-proxy
# Numeric, so that kubelet can verify runAsNonRoot (Knative's queue-proxy securityContext sets it;
# a user *name* would make kubelet refuse to start the container).
USER 65532:65532
ENTRYPOINT ["/queue-proxy"]
