package sharedmain

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clocktest "k8s.io/utils/clock/testing"
)

// TestRunReleasesMemoryOnceAfterStartup: run hands the startup garbage back
// once, startupSettle after serving, and not before.
func TestRunReleasesMemoryOnceAfterStartup(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer app.Close()
	released := make(chan struct{}, 10)
	q := startQPWith(t, app, nil, func(d *runtimeDeps) {
		d.releaseMemory = func() { released <- struct{}{} }
	})

	q.clock.Step(startupSettle - time.Millisecond)
	select {
	case <-released:
		t.Fatal("memory released before startupSettle")
	case <-time.After(50 * time.Millisecond):
	}
	q.clock.Step(time.Millisecond)
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("memory not released startupSettle after startup")
	}
	q.clock.Step(10 * startupSettle)
	select {
	case <-released:
		t.Fatal("memory released twice")
	case <-time.After(50 * time.Millisecond):
	}
}

// TestReleaseAfterStartupStopsWithContext: a shutdown before the settle
// time ends the wait without releasing.
func TestReleaseAfterStartupStopsWithContext(t *testing.T) {
	clk := clocktest.NewFakeClock(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	called := false
	done := releaseAfterStartup(ctx, clk, func() { called = true })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("releaseAfterStartup still waiting after ctx ended")
	}
	if called {
		t.Error("released after ctx ended")
	}
}
