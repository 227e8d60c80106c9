package h2c

import (
	"bufio"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"sync"
)

// errBadPreface: the client's first bytes after the 101 were not the
// HTTP/2 connection preface.
var errBadPreface = errors.New("h2c: bad client connection preface after the upgrade")

// HTTP/2 frame constants (RFC 7540 §4.1, §6).
const (
	frameHeaderLen  = 9
	frameHeaders    = 0x1
	frameSettings   = 0x4
	flagEndStream   = 0x1
	flagAck         = 0x1
	flagEndHeaders  = 0x4
	settingLen      = 6
	maxFramePayload = 1 << 14 // the smallest maximum frame size: it always fits
)

// decodeSettings decodes an HTTP2-Settings header value: the payload of a
// SETTINGS frame in unpadded base64url (RFC 7540 §3.2.1). Whitespace around
// the value is ignored; trailing '=' padding, which some clients send, is
// accepted. The payload must be whole 6-byte settings and fit in one frame.
func decodeSettings(v string) ([]byte, bool) {
	v = strings.TrimRight(strings.TrimSpace(v), "=")
	if base64.RawURLEncoding.DecodedLen(len(v)) > maxFramePayload {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b)%settingLen != 0 {
		return nil, false
	}
	return b, true
}

// appendFrameHeader appends a frame header (RFC 7540 §4.1).
func appendFrameHeader(b []byte, length int, typ, flags byte, stream uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), typ, flags,
		byte(stream>>24)&0x7f, byte(stream>>16), byte(stream>>8), byte(stream))
}

// appendSettingsFrame appends a SETTINGS frame with payload settings.
func appendSettingsFrame(b, settings []byte) []byte {
	b = appendFrameHeader(b, len(settings), frameSettings, 0, 0)
	return append(b, settings...)
}

// appendUpgradeHeadersFrame appends the HEADERS frame that opens stream 1
// for the upgrade request: its method (so that a HEAD answer has no body),
// scheme, authority, a placeholder path (the original request replaces this
// one before any handler sees it) and the marker token. Fields are HPACK
// literals without indexing (RFC 7541 §6.2.2), so the server's decoding
// table stays as the client's encoder expects it: empty. The caller keeps
// the authority short enough for one frame (maxAuthority).
func appendUpgradeHeadersFrame(b []byte, method, authority, token string) []byte {
	var block []byte
	for _, f := range [...][2]string{
		{":method", method}, {":scheme", "http"}, {":authority", authority}, {":path", "/"},
		{markerHeader, token},
	} {
		block = append(block, 0x00) // literal without indexing, new name
		block = appendHPACKString(block, f[0])
		block = appendHPACKString(block, f[1])
	}
	b = appendFrameHeader(b, len(block), frameHeaders, flagEndStream|flagEndHeaders, 1)
	return append(b, block...)
}

// appendHPACKString appends s as an HPACK string literal without Huffman
// coding: a 7-bit-prefix length (RFC 7541 §5.1, §5.2), then the bytes.
func appendHPACKString(b []byte, s string) []byte {
	n := uint64(len(s))
	if n < 127 {
		b = append(b, byte(n))
	} else {
		b = append(b, 127)
		n -= 127
		for n >= 128 {
			b = append(b, byte(n%128)|0x80)
			n /= 128
		}
		b = append(b, byte(n))
	}
	return append(b, s...)
}

// upgradedConn is the connection given to the HTTP/2 server after an
// upgrade. Reads return the synthetic frames (prefix), then whatever the
// HTTP/1 reader had buffered, then the connection's bytes. Writes pass
// through, except the server's first SETTINGS acknowledgement, which
// answers the synthetic SETTINGS frame and is dropped.
//
// The client's bytes are held back from the server until that
// acknowledgement has been written: net/http's HTTP/2 server acknowledges
// SETTINGS frames with a flag (needToSendSettingsAck), not a count, so two
// SETTINGS frames read while one of its writes is in flight (its first
// flush, say) get a single acknowledgement. If the client's SETTINGS frame
// could reach the server before the synthetic frame's acknowledgement was
// written, that one acknowledgement would answer both, be dropped, and the
// client's SETTINGS would never be acknowledged. Reading nothing of the
// client's until the acknowledgement is out means the first one the server
// writes can only answer the synthetic frame, and the client's SETTINGS
// gets its own. The server writes that acknowledgement without waiting for
// input (it is scheduled ahead of every stream's frames, and flushed when
// the server has nothing else to write or its buffer fills), and if it
// never does (a write fails, the settings are refused) it closes the
// connection, which ends the wait.
type upgradedConn struct {
	net.Conn

	rmu      sync.Mutex
	prefix   []byte
	buffered *bufio.Reader // nil once drained

	wmu     sync.Mutex
	acked   bool // the acknowledgement has been dropped
	hdr     [frameHeaderLen]byte
	nhdr    int    // bytes of hdr filled
	payload uint32 // bytes of the current frame's payload still to pass

	ackc      chan struct{} // closed once the acknowledgement has been dropped
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
}

// newUpgradedConn returns conn serving prefix, then buffered's bytes, then
// its own.
func newUpgradedConn(conn net.Conn, prefix []byte, buffered *bufio.Reader) *upgradedConn {
	return &upgradedConn{Conn: conn, prefix: prefix, buffered: buffered, ackc: make(chan struct{}), closed: make(chan struct{})}
}

func (c *upgradedConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.rmu.Unlock()
		return n, nil
	}
	c.rmu.Unlock()
	select {
	case <-c.ackc:
	case <-c.closed:
		return 0, net.ErrClosed
	}
	c.rmu.Lock()
	if c.buffered != nil {
		if k := c.buffered.Buffered(); k > 0 {
			n, err := c.buffered.Read(p[:min(len(p), k)])
			c.rmu.Unlock()
			return n, err
		}
		c.buffered = nil
	}
	c.rmu.Unlock()
	return c.Conn.Read(p)
}

func (c *upgradedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.acked {
		return c.Conn.Write(p)
	}
	out := c.dropFirstAck(p)
	if c.acked {
		close(c.ackc)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the connection and ends a Read waiting for the
// acknowledgement.
func (c *upgradedConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// dropFirstAck returns p without the first SETTINGS acknowledgement frame,
// parsing frame headers across calls. Bytes of a frame header split across
// writes are held back until the header is complete.
func (c *upgradedConn) dropFirstAck(p []byte) []byte {
	out := make([]byte, 0, len(p)+frameHeaderLen)
	for len(p) > 0 && !c.acked {
		if c.payload > 0 {
			k := min(int(c.payload), len(p))
			out = append(out, p[:k]...)
			p = p[k:]
			c.payload -= uint32(k)
			continue
		}
		k := copy(c.hdr[c.nhdr:], p)
		c.nhdr += k
		p = p[k:]
		if c.nhdr < frameHeaderLen {
			break
		}
		c.nhdr = 0
		length := uint32(c.hdr[0])<<16 | uint32(c.hdr[1])<<8 | uint32(c.hdr[2])
		if c.hdr[3] == frameSettings && c.hdr[4]&flagAck != 0 && length == 0 {
			c.acked = true
			continue
		}
		out = append(out, c.hdr[:]...)
		c.payload = length
	}
	return append(out, p...)
}
