package observability

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clocktest "k8s.io/utils/clock/testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// fakeExport records the bodies it is given; block, when set, makes an
// export wait until its context ends.
type fakeExport struct {
	mu     sync.Mutex
	bodies []string
	fail   error
	block  bool
	called chan struct{}
}

func (f *fakeExport) export(ctx context.Context, body []byte) error {
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	block, fail := f.block, f.fail
	f.mu.Unlock()
	select {
	case f.called <- struct{}{}:
	default:
	}
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return fail
}

func (f *fakeExport) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

func pushConfig(clk *clocktest.FakeClock, f *fakeExport, n *int) PushConfig {
	return PushConfig{
		Collect: func() *metricdata.ResourceMetrics {
			*n++
			return &metricdata.ResourceMetrics{SchemaURL: "s"}
		},
		Encode:   func(b []byte, rm *metricdata.ResourceMetrics) []byte { return append(b, rm.SchemaURL...) },
		Export:   f.export,
		Interval: time.Minute,
		Timeout:  time.Hour,
		Clock:    clk,
	}
}

func TestPushEveryInterval(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Now())
	f := &fakeExport{called: make(chan struct{}, 1)}
	var collected int
	var errs []error
	cfg := pushConfig(clk, f, &collected)
	f.fail = errors.New("collector down")
	cfg.OnError = func(err error) { errs = append(errs, err) }
	p := StartPush(cfg)
	for i := 1; i <= 3; i++ {
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(time.Minute)
		<-f.called
	}
	if err := p.Shutdown(context.Background()); err == nil {
		t.Error("Shutdown: nil error from a failing final export")
	}
	if f.count() != 4 || collected != 4 {
		t.Errorf("exports %d, collections %d; want 3 periodic + 1 final", f.count(), collected)
	}
	if len(errs) != 4 {
		t.Errorf("OnError called %d times, want 4", len(errs))
	}
}

// A collector that never answers: the periodic export hangs, Shutdown
// cancels it and still makes the final export, within its own context.
func TestPushShutdownEndsAHangingExport(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Now())
	f := &fakeExport{called: make(chan struct{}, 1), block: true}
	var collected int
	p := StartPush(pushConfig(clk, f, &collected))
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(time.Minute)
	<-f.called // hanging now
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) && (err == nil || err.Error() != "final metrics export: "+context.DeadlineExceeded.Error()) {
		t.Errorf("Shutdown = %v, want the final export's deadline", err)
	}
	if f.count() != 2 {
		t.Errorf("exports = %d, want the hanging one and the final one", f.count())
	}
}

func TestPushFinalExportSucceeds(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Now())
	f := &fakeExport{called: make(chan struct{}, 1)}
	var collected int
	p := StartPush(pushConfig(clk, f, &collected))
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.count() != 1 || f.bodies[0] != "s" {
		t.Errorf("bodies = %q, want one final export", f.bodies)
	}
}
