package sampling

import (
	"context"
	"os"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// fixedIDs is an SDK id generator that hands out the trace id it is set
// to, so a root span's trace id is known in advance.
type fixedIDs struct{ traceID oteltrace.TraceID }

func (g *fixedIDs) NewIDs(context.Context) (oteltrace.TraceID, oteltrace.SpanID) {
	return g.traceID, oteltrace.SpanID{7}
}

func (g *fixedIDs) NewSpanID(context.Context, oteltrace.TraceID) oteltrace.SpanID {
	return oteltrace.SpanID{7}
}

// sdkErrors collects what the SDK reports through otel.Handle.
var sdkErrors struct {
	once sync.Once
	mu   sync.Mutex
	errs []error
}

// captureSDKErrors routes otel.Handle into sdkErrors and returns a function
// that returns (and clears) what was reported since.
func captureSDKErrors() func() []error {
	sdkErrors.once.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			sdkErrors.mu.Lock()
			defer sdkErrors.mu.Unlock()
			sdkErrors.errs = append(sdkErrors.errs, err)
		}))
	})
	take := func() []error {
		sdkErrors.mu.Lock()
		defer sdkErrors.mu.Unlock()
		errs := sdkErrors.errs
		sdkErrors.errs = nil
		return errs
	}
	take()
	return take
}

// sdkFromEnv is the real SDK's tracer provider configured by the process
// environment alone (as Knative's is when OTEL_TRACES_SAMPLER is set), and
// what the SDK reported while reading it. env is set in the process for the
// duration of the call (os.Setenv, as fuzz functions cannot use t.Setenv;
// nothing in this package runs in parallel).
func sdkFromEnv(t testing.TB, env map[string]string) (*sdkProvider, []error) {
	t.Helper()
	for k, v := range env {
		old, had := os.LookupEnv(k)
		if err := os.Setenv(k, v); err != nil {
			t.Fatalf("setenv %s: %v", k, err)
		}
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	take := captureSDKErrors()
	ids := &fixedIDs{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(ids))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &sdkProvider{tracer: tp.Tracer("probe"), ids: ids}, take()
}

// sdkProvider starts probe spans on a real SDK tracer provider.
type sdkProvider struct {
	tracer oteltrace.Tracer
	ids    *fixedIDs
}

// samples reports whether the provider samples a span of trace id with
// parent p.
func (s *sdkProvider) samples(id [16]byte, p parent) bool {
	s.ids.traceID = id
	ctx := oteltrace.ContextWithSpanContext(context.Background(), sdkParent(id, p))
	_, span := s.tracer.Start(ctx, "probe")
	defer span.End()
	return span.SpanContext().IsSampled()
}
