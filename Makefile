# queue-proxy — see README.md.
GO      ?= go
BIN     ?= bin
LDFLAGS ?= -s -w

.PHONY: all build run test vet fmt-check bench bench-scale bench-go image clean

all: build

## build: the stripped queue-proxy binary and the demo user app, in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN)/queue-proxy ./cmd/queue-proxy
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/demo-app ./test/app

## run: the proxy on :8012 in front of the demo user app on :8080
run: build
	BIN=$(BIN) bash hack/run.sh

## test: every test, with the race detector
test:
	$(GO) test -race -count=1 ./...
	cd test/config && $(GO) test -race -count=1 ./...
	cd test/otel && $(GO) vet ./... && $(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench-go: in-process benchmarks of every layer and of the whole chain
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

## bench: whole-process benchmark against a direct connection and a bare reverse proxy
##        (QUICK=1, METRICS=0, TRACING=zipkin|otlp, TRACING_RATE=0.1, ...: see hack/bench/run.sh)
bench: build
	bash hack/bench/run.sh

## bench-scale: memory per idle connection and websocket, idle RssAnon, websocket echo,
##              h2c and streaming costs against a bare reverse proxy
##              (QUICK=1, KNATIVE_QP=path, ...: see hack/bench/scale.sh)
bench-scale: build
	bash hack/bench/scale.sh

## image: the container image (needs a container engine)
image:
	bash hack/image.sh

clean:
	rm -rf $(BIN)
