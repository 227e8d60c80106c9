package h2c

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeSettings: any HTTP2-Settings value either is refused or
// decodes to whole settings that fit one frame and re-encode to the value.
func FuzzDecodeSettings(f *testing.F) {
	for _, s := range []string{"", "AAMAAABkAARAAAAAAAIAAAAA", "AAIAAAAA", " AAIAAAAA ", "AAIAAAAA==", "!!", "AAIAAA", strings.Repeat("A", 30000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		b, ok := decodeSettings(v)
		if !ok {
			return
		}
		if len(b)%settingLen != 0 || len(b) > maxFramePayload {
			t.Fatalf("decodeSettings(%q) = %d bytes", v, len(b))
		}
		again, ok := decodeSettings(base64.RawURLEncoding.EncodeToString(b))
		if !ok || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x does not decode back: %x, %v", b, again, ok)
		}
	})
}

// recordConn is a net.Conn that records writes.
type recordConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error) { return c.buf.Write(p) }

// FuzzDropFirstAck: whatever frames the server writes, however its writes
// are split, the client receives exactly those frames minus the first
// empty SETTINGS acknowledgement.
func FuzzDropFirstAck(f *testing.F) {
	// spec: triples (type, flags, payload length) — frames built from them.
	f.Add([]byte{4, 0, 6, 8, 0, 4, 4, 1, 0, 4, 1, 0}, []byte{3, 9, 1})
	f.Add([]byte{4, 1, 0}, []byte{1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{0, 1, 200, 4, 1, 0, 1, 5, 30}, []byte{})
	f.Fuzz(func(t *testing.T, spec, splits []byte) {
		var all, want []byte
		dropped := false
		for i := 0; i+2 < len(spec) && i < 3*64; i += 3 {
			typ, flags, n := spec[i], spec[i+1], int(spec[i+2])
			frame := appendFrameHeader(nil, n, typ, flags, uint32(i))
			frame = append(frame, bytes.Repeat([]byte{byte(i)}, n)...)
			all = append(all, frame...)
			if !dropped && typ == frameSettings && flags&flagAck != 0 && n == 0 {
				dropped = true
				continue
			}
			want = append(want, frame...)
		}
		rc := &recordConn{}
		c := newUpgradedConn(rc, nil, nil)
		rest := all
		for _, s := range splits {
			k := min(int(s), len(rest))
			if n, err := c.Write(rest[:k]); err != nil || n != k {
				t.Fatalf("Write = %d, %v; want %d", n, err, k)
			}
			rest = rest[k:]
		}
		if _, err := c.Write(rest); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rc.buf.Bytes(), want) {
			t.Fatalf("client got %x\nwant %x", rc.buf.Bytes(), want)
		}
	})
}

// TestUpgradedConnRead: reads return the synthetic frames, then, once the
// server has written the acknowledgement that is dropped, the bytes the
// HTTP/1 reader had buffered, then the connection's.
func TestUpgradedConnRead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	br := bufio.NewReader(strings.NewReader("buffered"))
	br.Peek(1) //nolint:errcheck // fills the buffer
	c := newUpgradedConn(server, []byte("prefix|"), br)

	var got []byte
	buf := make([]byte, 4)
	for len(got) < len("prefix|") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "prefix|" {
		t.Fatalf("read %q, want %q", got, "prefix|")
	}

	// The client's bytes wait for the acknowledgement; frames before it
	// do not release them.
	type result struct {
		b   []byte
		err error
	}
	next := make(chan result, 1)
	go func() {
		n, err := c.Read(buf)
		next <- result{buf[:n], err}
	}()
	toClient := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		toClient <- b
	}()
	settings := appendSettingsFrame(nil, []byte{0, 2, 0, 0, 0, 0})
	ack := appendFrameHeader(nil, 0, frameSettings, flagAck, 0)
	if _, err := c.Write(settings); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-next:
		t.Fatalf("read %q, %v before the acknowledgement was written", r.b, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := c.Write(append(ack[:len(ack):len(ack)], ack...)); err != nil {
		t.Fatal(err)
	}
	r := <-next
	if r.err != nil {
		t.Fatal(r.err)
	}
	got = append(got, r.b...)
	go client.Write([]byte("|wire")) //nolint:errcheck // read below
	for len(got) < len("prefix|buffered|wire") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "prefix|buffered|wire" {
		t.Errorf("read %q, want %q", got, "prefix|buffered|wire")
	}
	c.Close()
	if b := <-toClient; !bytes.Equal(b, append(settings, ack...)) {
		t.Errorf("client got %x, want %x (the first acknowledgement dropped)", b, append(settings, ack...))
	}
}

// TestUpgradedConnCloseEndsWait: Close ends a read waiting for an
// acknowledgement that will not come.
func TestUpgradedConnCloseEndsWait(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := newUpgradedConn(server, nil, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still waiting 10s after Close")
	}
}

// TestAppendHPACKString checks the length prefix at the 7-bit boundary
// (RFC 7541 §5.1's example: 1337 with a 5-bit prefix; here 7 bits).
func TestAppendHPACKString(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0}},
		{126, []byte{126}},
		{127, []byte{127, 0}},
		{128, []byte{127, 1}},
		{127 + 128, []byte{127, 0x80, 1}},
	} {
		got := appendHPACKString(nil, strings.Repeat("a", tc.n))
		if !bytes.Equal(got[:len(got)-tc.n], tc.want) {
			t.Errorf("length %d: prefix %x, want %x", tc.n, got[:len(got)-tc.n], tc.want)
		}
	}
}
