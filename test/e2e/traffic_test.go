package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestTraffic sends requests through queue-proxy over every protocol its
// main port speaks (CONTRACT.md §2, §3.2).
func TestTraffic(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackConfig{})
	h2 := newH2CClient(t)

	t.Run("HTTP/1.1 headers", func(t *testing.T) {
		t.Parallel()
		req := get(s.url("/headers?a=1"))
		req.Host = "hello.default.example.com"
		req.Header.Set("X-Forwarded-For", "1.2.3.4")
		req.Header.Set("Knative-Serving-Revision", "hello-00001")
		req.Header.Set("Knative-Serving-Namespace", "default")
		req.Header.Set("X-Custom", "kept")
		seen := appSaw(t, mustFetch(t, s.c, req))
		if seen.Proto != "HTTP/1.1" || seen.Host != "hello.default.example.com" || seen.RequestURI != "/headers?a=1" {
			t.Errorf("app saw %s %s %s, want HTTP/1.1 hello.default.example.com /headers?a=1", seen.Proto, seen.Host, seen.RequestURI)
		}
		for _, k := range []string{"User-Agent", "Accept-Encoding", "Knative-Serving-Revision", "Knative-Serving-Namespace"} {
			if v, ok := seen.Headers[k]; ok {
				t.Errorf("app saw %s: %q; want it absent", k, v)
			}
		}
		for k, want := range map[string]string{
			"X-Forwarded-For": "1.2.3.4, 127.0.0.1",
			"Forwarded":       "for=1.2.3.4",
			"X-Custom":        "kept",
		} {
			if got := strings.Join(seen.Headers[k], ","); got != want {
				t.Errorf("app saw %s: %q, want %q", k, got, want)
			}
		}
	})

	t.Run("K-Original-Host", func(t *testing.T) {
		t.Parallel()
		req := get(s.url("/headers"))
		req.Header.Set("K-Original-Host", "orig.example.com")
		seen := appSaw(t, mustFetch(t, s.c, req))
		if seen.Host != "orig.example.com" {
			t.Errorf("app saw Host %q, want orig.example.com", seen.Host)
		}
		if v, ok := seen.Headers["K-Original-Host"]; ok {
			t.Errorf("app saw K-Original-Host: %q; want it removed", v)
		}
	})

	t.Run("status codes pass through", func(t *testing.T) {
		t.Parallel()
		for _, code := range []int{201, 404, 500, 502, 503} {
			r := mustFetch(t, s.c, get(s.url("/status?code="+strconv.Itoa(code))))
			if want := fmt.Sprintf("status %d\n", code); r.code != code || r.body != want {
				t.Errorf("got %d %q, want %d %q", r.code, r.body, code, want)
			}
		}
	})

	t.Run("h2c prior knowledge", func(t *testing.T) {
		t.Parallel()
		r := mustFetch(t, h2, get(s.url("/headers")))
		if r.proto != "HTTP/2.0" {
			t.Errorf("response protocol %s, want HTTP/2.0", r.proto)
		}
		if seen := appSaw(t, r); seen.Proto != "HTTP/2.0" {
			t.Errorf("app saw %s, want HTTP/2.0 (the upstream protocol follows the client's)", seen.Proto)
		}
	})

	t.Run("h2c upgrade", func(t *testing.T) {
		t.Parallel()
		// As with x/net's h2c server (Knative's too), the upgraded request
		// keeps its HTTP/1.1 semantics, so it goes upstream over HTTP/1.1;
		// later streams on the connection are HTTP/2 all the way.
		rs := h2cUpgradeGet(t, fmt.Sprintf("127.0.0.1:%d", s.ports.Main), "/headers")
		for i, want := range []string{"HTTP/1.1", "HTTP/2.0"} {
			if rs[i].status != "200" {
				t.Fatalf("stream %d: :status %s, want 200; body %q", 2*i+1, rs[i].status, rs[i].body)
			}
			if seen := appSaw(t, response{code: 200, body: rs[i].body}); seen.Proto != want {
				t.Errorf("stream %d: app saw %s, want %s", 2*i+1, seen.Proto, want)
			}
		}
	})

	for _, proto := range []struct {
		name string
		c    *http.Client
	}{{"HTTP/1.1", s.c}, {"h2c", h2}} {
		t.Run("streaming over "+proto.name, func(t *testing.T) {
			t.Parallel()
			checkIncremental(t, proto.c, s.url("/stream?n=4&interval=300ms"), "chunk ", 4, 300*time.Millisecond)
		})
	}

	t.Run("server-sent events", func(t *testing.T) {
		t.Parallel()
		checkIncremental(t, s.c, s.url("/sse?n=3&interval=300ms"), "data: ", 3, 300*time.Millisecond)
	})

	t.Run("websocket echo", func(t *testing.T) {
		t.Parallel()
		ws := dialWebsocket(t, s.ports.Main)
		echo(t, ws, websocket.TextMessage, []byte("hello through queue-proxy"))
		big := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{1}).Read(big)
		echo(t, ws, websocket.BinaryMessage, big)
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second)) //nolint:errcheck // best effort
	})

	// One 32 MiB body for both upload tests.
	payload := make([]byte, 32<<20)
	rand.NewChaCha8([32]byte{2}).Read(payload)
	sum := sha256.Sum256(payload)
	wantUpload := fmt.Sprintf(`{"bytes":%d,"sha256":"%s"}`, len(payload), hex.EncodeToString(sum[:]))

	for _, proto := range []struct {
		name string
		c    *http.Client
	}{{"HTTP/1.1", s.c}, {"h2c", h2}} {
		t.Run("32 MiB upload over "+proto.name, func(t *testing.T) {
			t.Parallel()
			req := newRequest(http.MethodPost, s.url("/upload"), bytes.NewReader(payload))
			r := mustFetch(t, proto.c, req)
			if r.code != http.StatusOK || strings.TrimSpace(r.body) != wantUpload {
				t.Errorf("got %d %q, want 200 %s", r.code, r.body, wantUpload)
			}
		})
	}

	for _, tc := range []struct {
		name string
		c    *http.Client
		size int64
	}{{"HTTP/1.1", s.c, 64 << 20}, {"h2c", h2, 16 << 20}} {
		t.Run("download over "+tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := tc.c.Do(get(s.url("/download?bytes=" + strconv.FormatInt(tc.size, 10))))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
			want := sha256.New()
			io.CopyN(want, &patternReader{}, tc.size) //nolint:errcheck // never fails
			if resp.StatusCode != http.StatusOK || n != tc.size || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
				t.Errorf("got %d, %d bytes (hash match %t), want 200, %d bytes", resp.StatusCode, n, bytes.Equal(h.Sum(nil), want.Sum(nil)), tc.size)
			}
			if resp.ContentLength != tc.size {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.size)
			}
		})
	}
}

// seenRequest is what test/app's /headers reports.
type seenRequest struct {
	Method     string              `json:"method"`
	Host       string              `json:"host"`
	Proto      string              `json:"proto"`
	RequestURI string              `json:"request_uri"`
	Headers    map[string][]string `json:"headers"`
}

func appSaw(t *testing.T, r response) seenRequest {
	t.Helper()
	var s seenRequest
	if r.code != http.StatusOK {
		t.Fatalf("/headers: %d %q", r.code, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("/headers: %v in %q", err, r.body)
	}
	return s
}

// checkIncremental GETs a stream of n lines starting with prefix, sent by the
// app with interval between them, and checks that they arrive one by one: a
// proxy that buffered the response would deliver the first line together
// with the last, while the app spends (n-1)×interval between them.
func checkIncremental(t *testing.T, c *http.Client, url, prefix string, n int, interval time.Duration) {
	t.Helper()
	resp, err := c.Do(get(url))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	var lines []string
	var first time.Time
	for {
		line, err := br.ReadString('\n')
		if strings.HasPrefix(line, prefix) {
			if len(lines) == 0 {
				first = time.Now()
			}
			lines = append(lines, strings.TrimSpace(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
	}
	end := time.Now()
	if len(lines) != n || lines[0] != prefix+"1" || lines[n-1] != prefix+strconv.Itoa(n) {
		t.Fatalf("lines %q, want %s1 .. %s%d", lines, prefix, prefix, n)
	}
	if gap := end.Sub(first); gap < interval {
		t.Errorf("the first line arrived only %v before the end of the stream; the app spent %v between them, so the proxy buffered", gap, time.Duration(n-1)*interval)
	}
}

// h2cUpgradeGet sends GET path with "Upgrade: h2c" over a raw connection,
// expects 101, then speaks HTTP/2 on it: it reads the answer to the upgraded
// request (stream 1) and sends the same GET again as stream 3. It returns
// the :status and body of both streams.
func h2cUpgradeGet(t *testing.T, addr, path string) [2]h2Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(requestTimeout)) //nolint:errcheck // a fresh TCP conn

	// HTTP2-Settings carries a SETTINGS payload: ENABLE_PUSH (2) = 0.
	settings := base64.RawURLEncoding.EncodeToString([]byte{0, 2, 0, 0, 0, 0})
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", path, addr, settings)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "h2c") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade answered %s %v %q, want 101 with Upgrade: h2c", resp.Status, resp.Header, b)
	}

	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var out [2]h2Response
	out[0] = readH2Stream(t, fr, 1)

	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", addr}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}) //nolint:errcheck // writes to a bytes.Buffer
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	out[1] = readH2Stream(t, fr, 3)
	return out
}

// h2Response is one HTTP/2 stream's answer.
type h2Response struct{ status, body string }

// readH2Stream reads frames until stream id ends, answering SETTINGS.
func readH2Stream(t *testing.T, fr *http2.Framer, id uint32) h2Response {
	t.Helper()
	var r h2Response
	var b strings.Builder
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading HTTP/2 frames of stream %d (status %q, body so far %q): %v", id, r.status, b.String(), err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				r.status = f.PseudoValue("status")
				if f.StreamEnded() {
					r.body = b.String()
					return r
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				b.Write(f.Data())
				if f.StreamEnded() {
					r.body = b.String()
					return r
				}
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY: %v", f.ErrCode)
		}
	}
}

// dialWebsocket opens a websocket to the app's echo endpoint through the
// main port.
func dialWebsocket(t *testing.T, port int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	if err != nil {
		if resp != nil {
			t.Fatalf("websocket handshake: %v (status %s)", err, resp.Status)
		}
		t.Fatalf("websocket handshake: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// echo sends msg and expects it back unchanged.
func echo(t *testing.T, ws *websocket.Conn, kind int, msg []byte) {
	t.Helper()
	if err := echoErr(ws, kind, msg); err != nil {
		t.Fatal(err)
	}
}

func echoErr(ws *websocket.Conn, kind int, msg []byte) error {
	ws.SetWriteDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // never fails
	if err := ws.WriteMessage(kind, msg); err != nil {
		return fmt.Errorf("websocket write: %w", err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // never fails
	gotKind, got, err := ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("websocket read: %w", err)
	}
	if gotKind != kind || !bytes.Equal(got, msg) {
		return fmt.Errorf("websocket echo: got type %d, %d bytes; want type %d, %d bytes", gotKind, len(got), kind, len(msg))
	}
	return nil
}

// patternReader yields test/app's /download body: downloadPattern repeated.
type patternReader struct{ off int }

const downloadPattern = "0123456789abcdefghijklmnopqrstuvwxyz\n"

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = downloadPattern[p.off]
		p.off = (p.off + 1) % len(downloadPattern)
	}
	return len(b), nil
}
