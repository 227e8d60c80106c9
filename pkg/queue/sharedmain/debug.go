package sharedmain

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// The debug listener: diagnostics for operators, on loopback by default so
// that nothing outside the pod reaches it (kubectl port-forward and kubectl
// debug do). QP_DEBUG_ADDRESS moves it (":8023" exposes it on every
// interface) or turns it off.
const (
	// serverDebug names the debug listener in the log and in tests.
	serverDebug = "debug"
	// debugOff is the QP_DEBUG_ADDRESS value that turns the listener off.
	debugOff = "off"
	// defaultDebugAddress is where the listener is when QP_DEBUG_ADDRESS
	// is unset or empty (the default tag of config.DebugAddress).
	defaultDebugAddress = "127.0.0.1:8023"
)

// debugAddress is the address QP_DEBUG_ADDRESS asks for: empty means the
// default, as for the other QP_ variables.
func debugAddress(v string) string {
	if v == "" {
		return defaultDebugAddress
	}
	return v
}

// checkDebugAddress accepts QP_DEBUG_ADDRESS: empty (the default), off
// (any case), or host:port with an empty host (every interface), an IP
// address or localhost, and a port number (0: the system picks one).
// Anything else is an error naming the variable: a name that needs
// resolving would make where the listener ends up depend on DNS.
func checkDebugAddress(addr string) error {
	if addr == "" || strings.EqualFold(addr, debugOff) {
		return nil
	}
	bad := func(why string) error {
		return errors.New("QP_DEBUG_ADDRESS: " + strconv.Quote(addr) + " " + why + ` (want host:port, e.g. 127.0.0.1:8023 or :8023, or "off")`)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad("is not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad("has no port number (0-65535)")
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return bad("has a host that is neither an IP address nor localhost")
	}
	return nil
}

// debugMux serves the debug endpoints, GET (and HEAD) only; other paths get
// 404, other methods 405. An endpoint is one line here:
//
//	/debug/config  the configuration document of PrintConfig, for the
//	               environment startup read (config renders it)
func debugMux(config func() ([]byte, error)) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /debug/config", jsonDocument(config))
	return mux
}

// jsonDocument answers with the JSON document render returns; a render
// error is a 500 with its text.
func jsonDocument(render func() ([]byte, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		doc, err := render()
		if err != nil {
			http.Error(w, "rendering the document: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(doc) //nolint:errcheck // the client went away
	})
}

// debugOn says whether QP_DEBUG_ADDRESS (already checked) asks for the
// debug listener, and so for the live stats behind /debug/stats.
func debugOn(addr string) bool { return !strings.EqualFold(addr, debugOff) }

// listenDebug opens the debug listener on addr (QP_DEBUG_ADDRESS, already
// checked) for h, with the internal servers' limits. It returns nil when
// addr is off, and also, after a warning, when the address cannot be bound:
// the listener is a diagnostic aid, and the user container, which shares
// the pod's network namespace, may already use the port, so it never stops
// queue-proxy from serving. The caller serves and shuts it down with the
// other servers.
func listenDebug(addr string, h http.Handler, logger *zap.SugaredLogger) *server {
	if !debugOn(addr) {
		return nil
	}
	addr = debugAddress(addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Warnw("Debug listener not started; set QP_DEBUG_ADDRESS to a free address, or to off",
			zap.String("address", addr), zap.Error(err))
		return nil
	}
	return &server{name: serverDebug, srv: newServer(h, readHeaderTimeout), ln: ln}
}
