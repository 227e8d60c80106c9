package spanexport

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
)

// Tests of the queue around the exports: drops, Shutdown, errors.

// dropLog records OnDrop calls.
type dropLog struct {
	mu    sync.Mutex
	calls [][2]uint64
}

func (l *dropLog) onDrop(dropped, total uint64) {
	l.mu.Lock()
	l.calls = append(l.calls, [2]uint64{dropped, total})
	l.mu.Unlock()
}

func TestOTLPFullQueueDrops(t *testing.T) {
	client := newFakeClient(0, true)
	var drops dropLog
	cfg := spanbatch.Config{MaxQueueSize: 2, MaxExportBatchSize: 1, Clock: fakeClock(), OnDrop: drops.onDrop}
	e := NewOTLP(client, cfg, Source{}, nil)

	e.ExportSpan(testSpan("a0"))
	client.next(t) // a0's export is in progress, and waits for release

	// Two spans fill the queue; the other five are dropped, at once.
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for _, sd := range testSpans("a1", "a2", "a3", "a4", "a5", "a6", "a7") {
			e.ExportSpan(sd)
		}
	}()
	select {
	case <-returned:
	case <-time.After(guard):
		t.Fatal("ExportSpan blocked on a full queue")
	}
	if got := e.Dropped(); got != 5 {
		t.Errorf("Dropped() = %d, want 5", got)
	}

	close(client.release)
	for _, want := range []string{"a1", "a2"} {
		if got := summarize(t, client.next(t)).scopes[0].spans; !slices.Equal(got, []string{want}) {
			t.Errorf("exported %q, want [%s]", got, want)
		}
	}
	shutdown(t, e)
	drops.mu.Lock()
	defer drops.mu.Unlock()
	// The first drop is reported at once, the rest at the latest by
	// Shutdown (the fake clock never moves): one or two calls adding up.
	var sum uint64
	for _, c := range drops.calls {
		sum += c[0]
		if c[0] == 0 || c[1] != sum {
			t.Errorf("OnDrop call %v does not add up after %d", c, sum-c[0])
		}
	}
	if n := len(drops.calls); n == 0 || n > 2 || sum != 5 {
		t.Errorf("OnDrop calls (dropped, total) = %v, want 1 or 2 calls totalling 5", drops.calls)
	}
}

func TestOTLPShutdownFlushes(t *testing.T) {
	client := newFakeClient(10, false)
	var errs errorLog
	cfg := spanbatch.Config{MaxExportBatchSize: 100, Clock: fakeClock()}
	e := NewOTLP(client, cfg, Source{}, errs.report)
	names := []string{"a1", "a2", "a3", "a4", "a5"}
	for _, sd := range testSpans(names...) {
		e.ExportSpan(sd)
	}
	if n := len(client.bodies); n != 0 {
		t.Fatalf("%d exports before Shutdown, want none (batch not full, clock stopped)", n)
	}
	shutdown(t, e)
	if n := len(client.bodies); n != 1 {
		t.Fatalf("%d exports at Shutdown, want 1", n)
	}
	if got := summarize(t, <-client.bodies).scopes[0].spans; !slices.Equal(got, names) {
		t.Errorf("Shutdown exported %q, want %q", got, names)
	}
	if n := client.closes(); n != 1 {
		t.Errorf("client closed %d times, want 1", n)
	}

	e.ExportSpan(testSpan("late"))
	e.ExportSpan(nil)
	if got := e.Dropped(); got != 1 {
		t.Errorf("Dropped() = %d after a span came after Shutdown, want 1", got)
	}
	shutdown(t, e) // again: no export, the client closed again
	if n := len(client.bodies); n != 0 {
		t.Errorf("%d exports after Shutdown", n)
	}
	if n := client.closes(); n != 2 {
		t.Errorf("client closed %d times after two Shutdowns, want 2", n)
	}
	if got := errs.all(); len(got) != 0 {
		t.Errorf("errors reported: %v", got)
	}
}

func TestOTLPShutdownContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{{
		name: "cancelled while waiting",
		ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			go cancel()
			return ctx, cancel
		},
		want: context.Canceled,
	}, {
		name: "deadline passed",
		ctx: func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Unix(0, 0))
		},
		want: context.DeadlineExceeded,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newFakeClient(0, true) // exports last until ctx ends
			var errs errorLog
			cfg := spanbatch.Config{MaxQueueSize: 4, MaxExportBatchSize: 1, Clock: fakeClock()}
			e := NewOTLP(client, cfg, Source{}, errs.report)
			e.ExportSpan(testSpan("a0"))
			client.next(t) // a0's export is in progress
			e.ExportSpan(testSpan("a1"))
			e.ExportSpan(testSpan("a2"))

			ctx, cancel := tt.ctx()
			err := e.Shutdown(ctx)
			cancel()
			if !errors.Is(err, tt.want) {
				t.Errorf("Shutdown() = %v, want %v", err, tt.want)
			}
			if n := client.closes(); n != 1 {
				t.Errorf("client closed %d times, want 1", n)
			}
			shutdown(t, e) // waits for the cancelled export to return
			if got := e.Dropped(); got != 2 {
				t.Errorf("Dropped() = %d, want the 2 queued spans", got)
			}
			e.ExportSpan(testSpan("late"))
			if got := e.Dropped(); got != 3 {
				t.Errorf("Dropped() = %d after a late span, want 3", got)
			}
			got := errs.all()
			if len(got) != 1 || !errors.Is(got[0], context.Canceled) {
				t.Errorf("errors reported: %v, want the cancelled export's", got)
			}
		})
	}
}

func TestOTLPReportsExportErrors(t *testing.T) {
	client := newFakeClient(1, false)
	client.err = errRefused
	var errs errorLog
	e := NewOTLP(client, spanbatch.Config{MaxExportBatchSize: 2, Clock: fakeClock()}, Source{}, errs.report)
	e.ExportSpan(testSpan("a1"))
	e.ExportSpan(testSpan("a2"))
	shutdown(t, e)
	got := errs.all()
	if len(got) != 1 || !errors.Is(got[0], errRefused) {
		t.Errorf("errors reported: %v, want one wrapping %v", got, errRefused)
	}
}
