// Command custom-main shows how a custom build extends queue-proxy through
// sharedmain.Main and Options, as with Knative's sharedmain: one Option wraps
// the upstream transport (here: counts round trips and tags each request with
// a header the user container can see), another wraps the proxy handler (here:
// counts requests and adds a response header).
package main

import (
	"net/http"
	"os"
	"sync/atomic"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

// Counters records what the wrappers saw.
type Counters struct {
	RoundTrips atomic.Int64
	Handled    atomic.Int64
}

// WithTransportCounter wraps Defaults.Transport.
func WithTransportCounter(c *Counters) sharedmain.Option {
	return func(d *sharedmain.Defaults) {
		next := d.Transport
		d.Transport = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			c.RoundTrips.Add(1)
			r.Header.Set("X-Custom-Transport", "seen")
			return next.RoundTrip(r)
		})
	}
}

// WithHandlerCounter wraps Defaults.ProxyHandler.
func WithHandlerCounter(c *Counters) sharedmain.Option {
	return func(d *sharedmain.Defaults) {
		next := d.ProxyHandler
		d.ProxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Handled.Add(1)
			w.Header().Set("X-Custom-Handler", "seen")
			next.ServeHTTP(w, r)
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func main() {
	var c Counters
	if err := sharedmain.Main(WithTransportCounter(&c), WithHandlerCounter(&c)); err != nil {
		os.Exit(1)
	}
}
