// Package certificate serves a TLS certificate from files on disk and
// reloads it when the files change, without a restart (CONTRACT.md §7).
//
// Knative's watcher re-reads both files once a minute and reloads when their
// SHA-256 digests change. This one does the same, and also reloads soon
// after a file-system event in the directories holding the files: a
// Kubernetes secret volume is updated by writing a new timestamped directory
// and atomically renaming a `..data` symlink over the old one (tls.crt and
// tls.key are symlinks through `..data`), so the directory, not the files,
// is watched. Events only trigger the same digest comparison the poll does,
// so a spurious or missed event costs nothing but a re-read; the one-minute
// poll stays as the fallback for what events cannot see (a symlink target
// outside the directory, a network file system, an exhausted inotify quota).
package certificate

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

const (
	// DefaultPollInterval is how often the files are re-read whatever the
	// events say; Knative's interval.
	DefaultPollInterval = time.Minute

	// DefaultSettle is how long a reload waits after the first event of a
	// burst. A secret volume update is four or five events; a writer that
	// replaces tls.crt and tls.key one after the other needs both in place.
	// Events inside the window join the same reload.
	DefaultSettle = 100 * time.Millisecond
)

// Watcher holds the current certificate of a certificate/key file pair.
type Watcher struct {
	certFile, keyFile string
	logger            *zap.SugaredLogger
	opts              options

	cert   atomic.Pointer[tls.Certificate]
	digest [2][sha256.Size]byte // of the files behind cert; run goroutine only

	notifier *fsnotify.Watcher // nil when file events are unavailable
	dirs     []string          // watched directories
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type options struct {
	clock       clock.WithTicker
	poll        time.Duration
	settle      time.Duration
	newNotifier func() (*fsnotify.Watcher, error)
	afterReload func(changed bool, err error) // tests: called after every reload attempt
}

// Option changes a Watcher's defaults.
type Option func(*options)

// WithClock sets the clock of the poll ticker and the settle timer.
func WithClock(c clock.WithTicker) Option { return func(o *options) { o.clock = c } }

// WithPollInterval sets how often the files are re-read regardless of
// events (DefaultPollInterval).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithSettle sets how long a reload waits after a file-system event
// (DefaultSettle); 0 reloads at once.
func WithSettle(d time.Duration) Option { return func(o *options) { o.settle = d } }

// NewWatcher loads the pair and starts watching it; Stop ends the watch.
// logger (nil for none) gets reload messages and errors.
// A pair that cannot be read or parsed, or whose certificate does not match
// its key, is an error. When file-system events are unavailable (e.g. the
// inotify instance limit is reached) the watcher logs a warning and polls.
func NewWatcher(certFile, keyFile string, logger *zap.SugaredLogger, opts ...Option) (*Watcher, error) {
	w := &Watcher{
		certFile: certFile,
		keyFile:  keyFile,
		logger:   logger,
		opts: options{
			clock:       clock.RealClock{},
			poll:        DefaultPollInterval,
			settle:      DefaultSettle,
			newNotifier: fsnotify.NewWatcher,
		},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if w.logger == nil {
		w.logger = zap.NewNop().Sugar()
	}
	for _, o := range opts {
		o(&w.opts)
	}
	if w.opts.poll <= 0 {
		return nil, errors.New("certificate watcher: poll interval must be positive, got " + w.opts.poll.String())
	}
	for _, f := range []string{certFile, keyFile} {
		if d := filepath.Dir(f); !slices.Contains(w.dirs, d) {
			w.dirs = append(w.dirs, d)
		}
	}
	// Watch first, then load: a change in between is then an event, not
	// a minute's wait for the poll.
	w.notifier = w.watchDirs()
	if _, err := w.load(); err != nil {
		if w.notifier != nil {
			w.notifier.Close()
		}
		return nil, err
	}

	ticker := w.opts.clock.NewTicker(w.opts.poll)
	go w.run(ticker)
	return w, nil
}

// watchDirs starts file-system notifications on every directory, or returns
// nil (and warns) when they are unavailable: polling still works.
func (w *Watcher) watchDirs() *fsnotify.Watcher {
	n, err := w.opts.newNotifier()
	if err != nil {
		w.logger.Warnw("File-system events unavailable; certificate changes are detected by polling only",
			zap.Duration("interval", w.opts.poll), zap.Error(err))
		return nil
	}
	for _, d := range w.dirs {
		if err := n.Add(d); err != nil {
			w.logger.Warnw("Cannot watch certificate directory; changes are detected by polling only",
				zap.String("dir", d), zap.Duration("interval", w.opts.poll), zap.Error(err))
			n.Close()
			return nil
		}
	}
	return n
}

// GetCertificate returns the current certificate, for
// tls.Config.GetCertificate. It never fails and ignores the hello (no SNI).
func (w *Watcher) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return w.cert.Load(), nil
}

// Stop ends the watch and waits for it; the last certificate stays served.
// It may be called more than once.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() {
		close(w.stop)
		<-w.done
		if w.notifier != nil {
			w.notifier.Close()
		}
	})
}

// run reloads on every poll tick and once per burst of file-system events.
// A failed reload is retried once after the settle time before it is logged
// as an error: a poll that reads tls.crt just before a volume update and
// tls.key just after, or a writer caught between the two files, sees a
// mismatched pair that is gone a moment later.
func (w *Watcher) run(ticker clock.Ticker) {
	defer close(w.done)
	defer ticker.Stop()

	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.notifier != nil {
		events, errs = w.notifier.Events, w.notifier.Errors
	}
	var timer clock.Timer
	var timerC <-chan time.Time
	retry := false // the armed timer retries a failed reload
	arm := func(isRetry bool) {
		retry = isRetry
		if timerC == nil {
			timer = w.opts.clock.NewTimer(w.opts.settle)
			timerC = timer.C()
		}
	}
	reload := func(isRetry bool) {
		changed, err := w.load()
		switch {
		case err != nil && !isRetry:
			w.logger.Debugw("Certificate reload failed; retrying", zap.Error(err))
			arm(true)
		case err != nil:
			w.logger.Errorw("Failed to reload certificate; keeping the current one", zap.Error(err))
		case changed:
			w.logger.Info("Certificate and/or key have changed on disk and were reloaded.")
		}
		if w.opts.afterReload != nil {
			w.opts.afterReload(changed, err)
		}
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	for {
		select {
		case <-w.stop:
			return
		case <-ticker.C():
			w.rewatch()
			reload(false)
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if w.opts.settle <= 0 {
				reload(false)
				continue
			}
			arm(false)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow means lost events: check the files.
			w.logger.Warnw("File-system event error; checking the certificate", zap.Error(err))
			arm(false)
		case <-timerC:
			timerC = nil
			reload(retry)
		}
	}
}

// rewatch re-adds a directory whose watch was lost (it was removed, or
// replaced by a rename), so that events resume once it exists again.
func (w *Watcher) rewatch() {
	if w.notifier == nil {
		return
	}
	watched := w.notifier.WatchList()
	for _, d := range w.dirs {
		if !slices.Contains(watched, d) {
			if err := w.notifier.Add(d); err == nil {
				w.logger.Infow("Watching certificate directory again", zap.String("dir", d))
			}
		}
	}
}

// load reads both files and, when their digests differ from the served
// pair's, parses them and swaps the certificate. The files are read once:
// the digest and the certificate come from the same bytes. Errors leave the
// current certificate in place.
func (w *Watcher) load() (changed bool, err error) {
	certPEM, err := os.ReadFile(w.certFile)
	if err != nil {
		return false, err
	}
	keyPEM, err := os.ReadFile(w.keyFile)
	if err != nil {
		return false, err
	}
	digest := [2][sha256.Size]byte{sha256.Sum256(certPEM), sha256.Sum256(keyPEM)}
	if w.cert.Load() != nil && digest == w.digest {
		return false, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, errors.New("certificate " + w.certFile + " and key " + w.keyFile + ": " + err.Error())
	}
	w.cert.Store(&cert)
	w.digest = digest
	return true, nil
}
