package certificate

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	clocktest "k8s.io/utils/clock/testing"

	"github.com/queue-proxy/queue-proxy/pkg/queue/certificate/certtest"
)

const (
	reloadedMsg = "Certificate and/or key have changed on disk and were reloaded."
	failedMsg   = "Failed to reload certificate; keeping the current one"
	settle      = 100 * time.Millisecond
	wait        = 10 * time.Second // bound on anything the tests wait for
)

type reload struct {
	changed bool
	err     error
}

// harness is a Watcher on a fake clock, with its logs and a channel of
// reload attempts.
type harness struct {
	t       *testing.T
	w       *Watcher
	clock   *clocktest.FakeClock
	logs    *observer.ObservedLogs
	reloads chan reload
}

// noEvents makes file-system events unavailable, as an exhausted inotify
// quota would.
func noEvents(o *options) {
	o.newNotifier = func() (*fsnotify.Watcher, error) { return nil, errors.New("too many open files") }
}

func start(t *testing.T, certFile, keyFile string, opts ...Option) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{t: t, clock: clocktest.NewFakeClock(time.Now()), logs: logs, reloads: make(chan reload, 1000)}
	opts = append([]Option{WithClock(h.clock), WithSettle(settle), func(o *options) {
		o.afterReload = func(changed bool, err error) { h.reloads <- reload{changed, err} }
	}}, opts...)
	w, err := NewWatcher(certFile, keyFile, zap.New(core).Sugar(), opts...)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	h.w = w
	t.Cleanup(w.Stop)
	return h
}

// serial is the serial number of the certificate served now.
func (h *harness) serial() int64 {
	h.t.Helper()
	c, err := h.w.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c.Leaf == nil {
		h.t.Fatalf("GetCertificate = %v, %v", c, err)
	}
	return c.Leaf.SerialNumber.Int64()
}

// next waits for the next reload attempt.
func (h *harness) next() reload {
	h.t.Helper()
	select {
	case r := <-h.reloads:
		return r
	case <-time.After(wait):
		h.t.Fatal("no reload attempt")
		return reload{}
	}
}

// nextChange waits for a reload that swapped the certificate, skipping
// attempts that found nothing new.
func (h *harness) nextChange() {
	h.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case r := <-h.reloads:
			if r.changed {
				return
			}
		case <-deadline:
			h.t.Fatal("the certificate was not reloaded")
		}
	}
}

// waitTimer waits until the settle timer is armed (the poll ticker is the
// other waiter).
func (h *harness) waitTimer() {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for h.clock.Waiters() < 2 {
		if time.Now().After(deadline) {
			h.t.Fatal("no settle timer was armed")
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) count(msg string) int { return h.logs.FilterMessage(msg).Len() }

func TestNewWatcherErrors(t *testing.T) {
	ca := certtest.NewCA(t)
	p1, p2 := ca.Issue(t, 1), ca.Issue(t, 2)
	cases := []struct {
		name      string
		cert, key []byte // nil: file missing
		opts      []Option
		want      string
	}{
		{"cert missing", nil, p1.KeyPEM, nil, "tls.crt"},
		{"key missing", p1.CertPEM, nil, nil, "tls.key"},
		{"cert not PEM", []byte("garbage"), p1.KeyPEM, nil, "failed to find any PEM data in certificate input"},
		{"empty files", []byte{}, []byte{}, nil, "failed to find any PEM data"},
		{"key of another certificate", p1.CertPEM, p2.KeyPEM, nil, "private key does not match public key"},
		{"cert and key swapped", p1.KeyPEM, p1.CertPEM, nil, "tls.crt"},
		{"zero poll interval", p1.CertPEM, p1.KeyPEM, []Option{WithPollInterval(0)}, "poll interval must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range map[string][]byte{certtest.CertName: c.cert, certtest.KeyName: c.key} {
				if b != nil {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			w, err := NewWatcher(filepath.Join(dir, certtest.CertName), filepath.Join(dir, certtest.KeyName), zap.NewNop().Sugar(), c.opts...)
			if err == nil {
				w.Stop()
				t.Fatal("NewWatcher succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestInitialCertificate(t *testing.T) {
	ca := certtest.NewCA(t)
	for name, newDir := range map[string]func(testing.TB, certtest.Pair) *certtest.Dir{
		"plain": certtest.NewDir, "projected": certtest.NewProjectedDir,
	} {
		t.Run(name, func(t *testing.T) {
			d := newDir(t, ca.Issue(t, 7))
			h := start(t, d.CertFile(), d.KeyFile())
			if got := h.serial(); got != 7 {
				t.Errorf("serial = %d, want 7", got)
			}
			if n := h.logs.Len(); n != 0 {
				t.Errorf("startup logged %v", h.logs.All())
			}
		})
	}
}

// TestReloadOnFileEvents: a change is picked up from file-system events
// alone (the poll ticker never fires), once the settle time has passed.
func TestReloadOnFileEvents(t *testing.T) {
	ca := certtest.NewCA(t)
	for name, newDir := range map[string]func(testing.TB, certtest.Pair) *certtest.Dir{
		"plain files replaced": certtest.NewDir, "projected volume ..data swap": certtest.NewProjectedDir,
	} {
		t.Run(name, func(t *testing.T) {
			d := newDir(t, ca.Issue(t, 1))
			h := start(t, d.CertFile(), d.KeyFile())
			for serial := int64(2); serial <= 4; serial++ {
				d.Write(t, ca.Issue(t, serial))
				h.waitTimer()
				if got := h.serial(); got != serial-1 {
					t.Fatalf("serial %d before the settle time passed, want %d", got, serial-1)
				}
				h.clock.Step(settle)
				h.nextChange()
				if got := h.serial(); got != serial {
					t.Fatalf("serial = %d after rotation, want %d", got, serial)
				}
			}
			if n := h.count(reloadedMsg); n != 3 {
				t.Errorf("%d reload messages, want 3", n)
			}
			if n := h.logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
				t.Errorf("errors logged: %v", h.logs.All())
			}
		})
	}
}

func TestSettleZeroReloadsAtOnce(t *testing.T) {
	ca := certtest.NewCA(t)
	d := certtest.NewProjectedDir(t, ca.Issue(t, 1))
	h := start(t, d.CertFile(), d.KeyFile(), WithSettle(0))
	d.Write(t, ca.Issue(t, 2))
	h.nextChange() // the clock never moves
	if got := h.serial(); got != 2 {
		t.Errorf("serial = %d, want 2", got)
	}
}

// TestPollFallback: changes that events do not report are found by the poll.
func TestPollFallback(t *testing.T) {
	ca := certtest.NewCA(t)
	cases := []struct {
		name  string
		setup func(t *testing.T) (certFile, keyFile string, rotate func(certtest.Pair), opts []Option)
		warn  string
	}{
		{"file events unavailable", func(t *testing.T) (string, string, func(certtest.Pair), []Option) {
			d := certtest.NewProjectedDir(t, ca.Issue(t, 1))
			return d.CertFile(), d.KeyFile(), func(p certtest.Pair) { d.Write(t, p) }, []Option{noEvents}
		}, "File-system events unavailable; certificate changes are detected by polling only"},
		{"files are symlinks out of the watched directory", func(t *testing.T) (string, string, func(certtest.Pair), []Option) {
			target := certtest.NewDir(t, ca.Issue(t, 1))
			dir := t.TempDir()
			for _, name := range []string{certtest.CertName, certtest.KeyName} {
				if err := os.Symlink(filepath.Join(target.Path, name), filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			return filepath.Join(dir, certtest.CertName), filepath.Join(dir, certtest.KeyName), func(p certtest.Pair) { target.Write(t, p) }, nil
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			certFile, keyFile, rotate, opts := c.setup(t)
			h := start(t, certFile, keyFile, opts...)
			if c.warn != "" && h.count(c.warn) != 1 {
				t.Errorf("want the warning %q, got %v", c.warn, h.logs.All())
			}
			rotate(ca.Issue(t, 2))
			h.clock.Step(DefaultPollInterval - time.Nanosecond)
			if got := h.serial(); got != 1 {
				t.Fatalf("serial = %d before the poll interval passed, want 1", got)
			}
			h.clock.Step(time.Nanosecond)
			h.nextChange()
			if got := h.serial(); got != 2 {
				t.Errorf("serial = %d after a poll, want 2", got)
			}
			if n := h.count(reloadedMsg); n != 1 {
				t.Errorf("%d reload messages, want 1", n)
			}
		})
	}
}

func TestPollWithoutChangeIsQuiet(t *testing.T) {
	ca := certtest.NewCA(t)
	d := certtest.NewDir(t, ca.Issue(t, 1))
	h := start(t, d.CertFile(), d.KeyFile(), noEvents)
	before, _ := h.w.GetCertificate(nil)
	for range 3 {
		h.clock.Step(DefaultPollInterval)
		if r := h.next(); r.changed || r.err != nil {
			t.Fatalf("reload of unchanged files = %+v", r)
		}
	}
	// Rewriting the same bytes is no change either.
	p1 := ca.Issue(t, 1)
	d.Write(t, p1)
	h.clock.Step(DefaultPollInterval)
	if r := h.next(); !r.changed {
		t.Fatalf("new pair not reloaded: %+v", r)
	}
	before, _ = h.w.GetCertificate(nil)
	d.Write(t, p1)
	h.clock.Step(DefaultPollInterval)
	if r := h.next(); r.changed || r.err != nil {
		t.Fatalf("reload of rewritten identical files = %+v", r)
	}
	// A new pair with the same serial is a change.
	d.Write(t, ca.Issue(t, 1))
	h.clock.Step(DefaultPollInterval)
	if r := h.next(); !r.changed {
		t.Fatalf("new key with the same serial not reloaded: %+v", r)
	}
	after, _ := h.w.GetCertificate(nil)
	if after == before {
		t.Error("certificate not swapped")
	}
	if n := h.count(reloadedMsg); n != 2 {
		t.Errorf("%d reload messages, want 2: %v", n, h.logs.All())
	}
}

// TestBadFilesKeepCurrentCertificate: unreadable or mismatched files leave
// the served certificate alone, are retried once, then logged as an error;
// fixing them is picked up.
func TestBadFilesKeepCurrentCertificate(t *testing.T) {
	ca := certtest.NewCA(t)
	p1, p2, p3 := ca.Issue(t, 1), ca.Issue(t, 2), ca.Issue(t, 3)
	cases := []struct {
		name    string
		corrupt func(t *testing.T, d *certtest.Dir)
		want    string
	}{
		{"key of another certificate", func(t *testing.T, d *certtest.Dir) { d.WriteFile(t, certtest.KeyName, p2.KeyPEM) }, "private key does not match public key"},
		{"certificate not PEM", func(t *testing.T, d *certtest.Dir) { d.WriteFile(t, certtest.CertName, []byte("garbage")) }, "failed to find any PEM data"},
		{"certificate truncated", func(t *testing.T, d *certtest.Dir) { d.WriteFile(t, certtest.CertName, p2.CertPEM[:len(p2.CertPEM)/2]) }, "failed to find any PEM data"},
		{"key empty", func(t *testing.T, d *certtest.Dir) { d.WriteFile(t, certtest.KeyName, nil) }, "failed to find any PEM data in key input"},
		{"key removed", func(t *testing.T, d *certtest.Dir) {
			if err := os.Remove(d.KeyFile()); err != nil {
				t.Fatal(err)
			}
		}, "no such file or directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := certtest.NewDir(t, p1)
			h := start(t, d.CertFile(), d.KeyFile(), noEvents)
			c.corrupt(t, d)

			h.clock.Step(DefaultPollInterval)
			if r := h.next(); r.err == nil {
				t.Fatalf("reload of broken files = %+v, want an error", r)
			}
			if n := h.count(failedMsg); n != 0 {
				t.Fatalf("error logged before the retry: %v", h.logs.All())
			}
			h.clock.Step(settle) // the retry
			r := h.next()
			if r.err == nil || !strings.Contains(r.err.Error(), c.want) {
				t.Fatalf("retry = %+v, want an error containing %q", r, c.want)
			}
			errs := h.logs.FilterMessage(failedMsg).FilterLevelExact(zapcore.ErrorLevel).All()
			if len(errs) != 1 || !strings.Contains(errs[0].ContextMap()["error"].(string), c.want) {
				t.Fatalf("error log = %v, want one %q with %q", errs, failedMsg, c.want)
			}
			if got := h.serial(); got != 1 {
				t.Fatalf("serial = %d with broken files, want 1 (kept)", got)
			}

			d.Write(t, p3)
			h.clock.Step(DefaultPollInterval)
			h.nextChange()
			if got := h.serial(); got != 3 {
				t.Errorf("serial = %d after the files were fixed, want 3", got)
			}
		})
	}
}

// TestTransientMismatchIsNotAnError: a writer caught between tls.crt and
// tls.key is retried after the settle time, and nothing is logged as an
// error.
func TestTransientMismatchIsNotAnError(t *testing.T) {
	ca := certtest.NewCA(t)
	p1, p2 := ca.Issue(t, 1), ca.Issue(t, 2)
	d := certtest.NewDir(t, p1)
	h := start(t, d.CertFile(), d.KeyFile(), noEvents)

	d.WriteFile(t, certtest.CertName, p2.CertPEM)
	h.clock.Step(DefaultPollInterval)
	if r := h.next(); r.err == nil {
		t.Fatalf("half-written pair = %+v, want an error", r)
	}
	d.WriteFile(t, certtest.KeyName, p2.KeyPEM)
	h.clock.Step(settle)
	if r := h.next(); !r.changed || r.err != nil {
		t.Fatalf("retry = %+v, want the new pair", r)
	}
	if got := h.serial(); got != 2 {
		t.Errorf("serial = %d, want 2", got)
	}
	if n := h.logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Errorf("errors logged: %v", h.logs.All())
	}
}

// TestWatchResumesAfterDirectoryReplaced: when the watched directory goes
// away, the poll finds the new files and re-adds the watch, so events work
// again.
func TestWatchResumesAfterDirectoryReplaced(t *testing.T) {
	ca := certtest.NewCA(t)
	path := filepath.Join(t.TempDir(), "certs")
	d := certtest.NewProjectedDirAt(t, path, ca.Issue(t, 1))
	h := start(t, d.CertFile(), d.KeyFile(), WithSettle(0))

	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for slices.Contains(h.w.notifier.WatchList(), path) {
		if time.Now().After(deadline) {
			t.Fatal("the watch on the removed directory was not dropped")
		}
		time.Sleep(time.Millisecond)
	}
	d = certtest.NewProjectedDirAt(t, path, ca.Issue(t, 2))
	h.clock.Step(DefaultPollInterval)
	h.nextChange()
	if got := h.serial(); got != 2 {
		t.Fatalf("serial = %d after the poll, want 2", got)
	}
	if h.count("Watching certificate directory again") != 1 {
		t.Errorf("no re-watch logged: %v", h.logs.All())
	}

	d.Write(t, ca.Issue(t, 3))
	h.nextChange() // by event: the clock does not move
	if got := h.serial(); got != 3 {
		t.Errorf("serial = %d after an event, want 3", got)
	}
}

func TestStop(t *testing.T) {
	ca := certtest.NewCA(t)
	d := certtest.NewDir(t, ca.Issue(t, 1))
	h := start(t, d.CertFile(), d.KeyFile())
	h.w.Stop()
	h.w.Stop() // idempotent
	d.Write(t, ca.Issue(t, 2))
	h.clock.Step(DefaultPollInterval)
	if got := h.serial(); got != 1 {
		t.Errorf("serial = %d after Stop, want the last one, 1", got)
	}
	select {
	case r := <-h.reloads:
		t.Errorf("reload after Stop: %+v", r)
	default:
	}
}

// TestRotationPickupLatency measures, on the real clock, how long a
// rotation takes to be served: through file events (default settle time and
// none) and through the poll alone (with a short interval; the default is a
// minute). The event paths must beat the one-minute poll by far.
func TestRotationPickupLatency(t *testing.T) {
	ca := certtest.NewCA(t)
	pairs := []certtest.Pair{ca.Issue(t, 1), ca.Issue(t, 2)}
	const rounds = 5
	cases := []struct {
		name string
		opts []Option
		max  time.Duration
	}{
		{"events, default settle", nil, 5 * time.Second},
		{"events, settle 0", []Option{WithSettle(0)}, 5 * time.Second},
		{"poll only, 250ms interval", []Option{noEvents, WithPollInterval(250 * time.Millisecond)}, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := certtest.NewProjectedDir(t, pairs[0])
			w, err := NewWatcher(d.CertFile(), d.KeyFile(), zap.NewNop().Sugar(), c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()

			// Readers hammer GetCertificate during the rotations (-race).
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if cert, _ := w.GetCertificate(nil); cert == nil || cert.Leaf == nil {
							t.Error("GetCertificate returned no certificate")
							return
						}
						runtime.Gosched()
					}
				})
			}
			defer func() { close(stop); wg.Wait() }()

			var lat []time.Duration
			for i := 1; i <= rounds; i++ {
				want := pairs[i%2]
				begin := time.Now()
				d.Write(t, want)
				for {
					cert, _ := w.GetCertificate(nil)
					if cert.Leaf.SerialNumber.Int64() == want.Serial {
						break
					}
					if time.Since(begin) > c.max {
						t.Fatalf("rotation %d not picked up within %v", i, c.max)
					}
					time.Sleep(100 * time.Microsecond)
				}
				lat = append(lat, time.Since(begin))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			t.Logf("pickup over %d rotations: min %v, median %v, max %v", rounds, lat[0], lat[rounds/2], lat[rounds-1])
		})
	}
}

// BenchmarkCheckUnchanged is what every poll tick and event burst costs when
// nothing changed: read both files and hash them.
func BenchmarkCheckUnchanged(b *testing.B) {
	ca := certtest.NewCA(b)
	d := certtest.NewProjectedDir(b, ca.Issue(b, 1))
	w, err := NewWatcher(d.CertFile(), d.KeyFile(), zap.NewNop().Sugar(), noEvents)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	b.ReportAllocs()
	for b.Loop() {
		if changed, err := w.load(); changed || err != nil {
			b.Fatal(changed, err)
		}
	}
}

// BenchmarkReload is the cost of a reload that swaps the certificate.
func BenchmarkReload(b *testing.B) {
	ca := certtest.NewCA(b)
	d := certtest.NewProjectedDir(b, ca.Issue(b, 1))
	w, err := NewWatcher(d.CertFile(), d.KeyFile(), zap.NewNop().Sugar(), noEvents)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	b.ReportAllocs()
	for b.Loop() {
		w.digest = [2][32]byte{} // force a parse
		if changed, err := w.load(); !changed || err != nil {
			b.Fatal(changed, err)
		}
	}
}

func BenchmarkGetCertificate(b *testing.B) {
	ca := certtest.NewCA(b)
	d := certtest.NewDir(b, ca.Issue(b, 1))
	w, err := NewWatcher(d.CertFile(), d.KeyFile(), zap.NewNop().Sugar(), noEvents)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.GetCertificate(nil)
		}
	})
}
