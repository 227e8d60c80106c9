package harness

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// StartupTimeout bounds how long a process may take to start serving; the
// suites run beside other builds and -race tests, so it is generous.
const StartupTimeout = 30 * time.Second

// readyInterval is how often a starting process is polled.
const readyInterval = 25 * time.Millisecond

// StartRetrying calls start, which starts a process on freshly chosen ports
// and waits until it is ready, again (three attempts in all) while the
// process exits because another program took one of its ports first. It
// fails the test if the process does not become ready; what names it.
func StartRetrying(t testing.TB, what string, start func() (*Process, error)) *Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := start()
		if err == nil {
			return p
		}
		if p.LostPortRace() && attempt < 3 {
			t.Logf("%s lost a port race, retrying: %v", what, err)
			continue
		}
		t.Fatalf("%s did not become ready: %v", what, err)
	}
}

// StartApp starts the demo user container (bin) on *port, choosing a free
// one if it is 0, with env on top of ChildEnv's, and waits until it serves.
func StartApp(t testing.TB, bin string, port *int, env map[string]string) *Process {
	t.Helper()
	start := func() (*Process, error) {
		p := Start(t, "app", bin, []string{"-port", strconv.Itoa(*port)}, ChildEnv(env))
		return p, p.Await(StartupTimeout, readyInterval, answers("http://127.0.0.1:"+strconv.Itoa(*port)+"/healthz"))
	}
	if *port != 0 {
		// A port the test chose: losing it is not worth a retry.
		p, err := start()
		if err != nil {
			t.Fatalf("the user container did not become ready: %v", err)
		}
		return p
	}
	return StartRetrying(t, "the user container", func() (*Process, error) {
		*port = FreePort(t)
		return start()
	})
}

// StartQueueProxy starts queue-proxy (bin) in front of the user container
// on ports.User, on fresh ports for its own listeners (stored in ports) and
// with the environment env returns for them (on top of ChildEnv's), and
// waits until it answers the activator's probe with 200 "queue".
func StartQueueProxy(t testing.TB, bin string, ports *Ports, env func(Ports) map[string]string) *Process {
	t.Helper()
	return StartRetrying(t, "queue-proxy", func() (*Process, error) {
		ports.PickQueueProxy(t)
		p := Start(t, "queue-proxy", bin, nil, ChildEnv(env(*ports)))
		return p, p.Await(StartupTimeout, readyInterval, activatorProbeOK("http://127.0.0.1:"+strconv.Itoa(ports.Main)+"/"))
	})
}

// readyClient polls starting processes; it keeps no connection open.
var readyClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

// answers reports whether anything answers a GET of url.
func answers(url string) func() (bool, string) {
	return func() (bool, string) {
		resp, err := readyClient.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return true, ""
	}
}

// activatorProbeOK reports whether the activator's probe of url is answered
// 200 "queue", as it is once queue-proxy and its user container are ready.
func activatorProbeOK(url string) func() (bool, string) {
	return func() (bool, string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "Knative-Activator-Probe")
		req.Header.Set("K-Network-Probe", "queue")
		resp, err := readyClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode == http.StatusOK && string(b) == "queue" {
			return true, ""
		}
		return false, fmt.Sprint(resp.StatusCode, " ", string(b), " ", err)
	}
}
