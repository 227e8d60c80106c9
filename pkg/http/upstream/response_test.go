package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// respOutcome is everything one response yields, from either parser: the
// head's fields, the trailer before and after the body, the body's bytes,
// how reading it ended, and the reader's stream position after it.
type respOutcome struct {
	HeadErr          bool
	StatusCode       int
	Status           string
	Proto            string
	ProtoMajor       int
	ProtoMinor       int
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool
	TrailerBefore    http.Header
	Body             string
	End              string // "EOF", "unexpected EOF", "error" or "stuck"
	TrailerAfter     http.Header
	Pos              int64 // bytes consumed from the stream; only when End is EOF
}

// respShape is how a test feeds the bytes: the bufio.Reader's size, a
// wrapper that changes how the source returns them, and the size of the
// body reads.
type respShape struct {
	name     string
	bufSize  int
	wrap     func(io.Reader) io.Reader
	readSize int
}

var respShapes = []respShape{
	{"default", 4096, nil, 512},
	{"small-buffer", 16, nil, 7},
	{"one-byte-source", 64, iotest.OneByteReader, 1},
	{"data-with-eof", 4096, iotest.DataErrReader, 8192}, // bodies read past bufio
	{"large-buffer", 8192, iotest.HalfReader, 3},
}

// respCounter counts the bytes handed to the bufio.Reader above it.
type respCounter struct {
	r io.Reader
	n int64
}

func (c *respCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// respStream is one reader of a byte string in a given shape.
type respStream struct {
	br *bufio.Reader
	c  *respCounter
}

func newRespStream(data []byte, s respShape) *respStream {
	var src io.Reader = bytes.NewReader(data)
	if s.wrap != nil {
		src = s.wrap(src)
	}
	c := &respCounter{r: src}
	return &respStream{br: bufio.NewReaderSize(c, s.bufSize), c: c}
}

func (s *respStream) pos() int64 { return s.c.n - int64(s.br.Buffered()) }

// respDrain reads r to its first error in reads of size bytes.
func respDrain(r io.Reader, size int) (body, end string) {
	var out []byte
	buf := make([]byte, size)
	for empty := 0; empty < 100; {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case err == io.EOF:
			return string(out), "EOF"
		case err == io.ErrUnexpectedEOF:
			return string(out), "unexpected EOF"
		case err != nil:
			return string(out), "error"
		case n == 0:
			empty++
		default:
			empty = 0
		}
	}
	return string(out), "stuck"
}

// respNetHTTP reads one response with net/http, the reference.
func respNetHTTP(s *respStream, method string, readSize int) respOutcome {
	res, err := http.ReadResponse(s.br, &http.Request{Method: method})
	if err != nil {
		return respOutcome{HeadErr: true}
	}
	o := respOutcome{
		StatusCode: res.StatusCode, Status: res.Status, Proto: res.Proto,
		ProtoMajor: res.ProtoMajor, ProtoMinor: res.ProtoMinor,
		Header: res.Header.Clone(), ContentLength: res.ContentLength,
		TransferEncoding: res.TransferEncoding, Close: res.Close,
		TrailerBefore: res.Trailer.Clone(),
	}
	o.Body, o.End = respDrain(res.Body, readSize)
	o.TrailerAfter = res.Trailer.Clone()
	if o.End == "EOF" {
		o.Pos = s.pos()
	}
	return o
}

// respOurs reads one response with ReadResponse into resp, reused, and
// reports whether it said the response was complete.
func respOurs(s *respStream, method string, readSize int, resp *Response) (o respOutcome, complete bool, err error) {
	if err := ReadResponse(s.br, method, resp); err != nil {
		if resp.Complete() {
			return o, true, errors.New("Complete after a failed head")
		}
		return respOutcome{HeadErr: true}, false, nil
	}
	o = respOutcome{
		StatusCode: resp.StatusCode, Status: resp.Status, Proto: resp.Proto,
		ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: resp.Header.Clone(), ContentLength: resp.ContentLength,
		TransferEncoding: resp.TransferEncoding, Close: resp.Close,
		TrailerBefore: resp.Trailer.Clone(),
	}
	if o.TransferEncoding != nil {
		o.TransferEncoding = append([]string(nil), o.TransferEncoding...)
	}
	body, err := resp.Body(s.br)
	if err != nil {
		return o, false, fmt.Errorf("Body: %v", err)
	}
	o.Body, o.End = respDrain(body, readSize)
	o.TrailerAfter = resp.Trailer.Clone()
	if o.End == "EOF" {
		o.Pos = s.pos()
	}
	return o, resp.Complete(), nil
}

// respMaxPipelined bounds how many responses respCompare reads from one
// byte string.
const respMaxPipelined = 4

// respCompare reads responses from data back to back, with net/http and
// with one reused Response, until a head fails or a body does not end in
// io.EOF, and reports the first difference: in any field, the body, how it
// ended, the stream position after it, or a Complete that is not exactly
// "the body ended in io.EOF".
func respCompare(data []byte, method string, shape respShape) error {
	want, got := newRespStream(data, shape), newRespStream(data, shape)
	var resp Response
	for i := 0; i < respMaxPipelined; i++ {
		w := respNetHTTP(want, method, shape.readSize)
		g, complete, err := respOurs(got, method, shape.readSize, &resp)
		if err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
		if !reflect.DeepEqual(g, w) {
			return fmt.Errorf("response %d:\n got %+v\nwant %+v", i, g, w)
		}
		if complete != (w.End == "EOF" && !w.HeadErr) {
			return fmt.Errorf("response %d: Complete() = %v after a body that ended in %q", i, complete, w.End)
		}
		if w.HeadErr || w.End != "EOF" {
			return nil
		}
	}
	return nil
}

// respMethods are the request methods the differential tests use.
var respMethods = []string{"GET", "HEAD", "POST", ""}

// respCases are raw responses, valid and not, for the differential tests
// (and the fuzz seeds). Each is read with every method and shape.
var respCases = []string{
	// Status lines.
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1   200   Spaced  Out \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 201 Created\nContent-Length: 2\n\nhi",
	"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 999 Weird\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 000 Zero\r\n\r\nuntil close",
	"HTTP/1.1 099 Low\r\n\r\nuntil close",
	"HTTP/1.1 +99 Plus\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 -00 Minus zero\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 -01 Negative\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1\r\n\r\n",
	"HTTP/1.1 \r\n\r\n",
	"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/0.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.10 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/a.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"ICY 200 OK\r\nContent-Length: 0\r\n\r\n",
	" HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"",
	"HTTP/1.1 200 OK",
	"HTTP/1.1 200 OK\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r",
	"HTTP/1.1 200 OK\r\nContent-Length: 0",

	// Fields.
	"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nX-FOO-bar: 1\r\nx_under: 2\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo Bar: spaced name\r\nfoo baz: x\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo : space before colon\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: empty name\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo\t: tab\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFo\x00o: nul\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nF(o)o: paren\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\x00b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\x7fb\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\x01b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: \x80caf\xc3\xa9\xff\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo:x\r\nBar:\r\nBaz:   \t spaced \t  \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\tb\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n b\r\n\t c \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo:\r\n \r\n\t\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo:\r\n x\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n b\x00\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n no: colon needed\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n Foo: leading space\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\tFoo: leading tab\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n \r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\rb\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n\r\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n \r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n ",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nLong: " + strings.Repeat("v", 5000) + "\r\nNext: " + strings.Repeat("w", 70) + "\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nFolded: " + strings.Repeat("v", 40) + "\r\n " + strings.Repeat("w", 40) + "\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-" + strings.Repeat("k", 100) + ": v\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=5\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: No-Cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: x\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control:\r\nContent-Length: 0\r\n\r\n",

	// Connection.
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nConnection: upgrade\r\nConnection: CLOSE \r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\n\r\nuntil close",
	"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
	"HTTP/2.0 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: x\r\nContent-Length: 0\r\n\r\n",

	// Content-Length.
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nTransfer-Encoding : chunked\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 00005\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length:   5  \r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length:\r\nContent-Length:\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\nhellohello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
	"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: bad\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",

	// Transfer-Encoding.
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding:  CHUNKED \r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\xe2\x84\xaaed\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/0.9 200 OK\r\nTransfer-Encoding: bogus\r\n\r\nx",
	"HTTP/2.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n",

	// Chunked framing.
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0;last\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;q=\"a;b\"\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5  \t\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000005\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\ng\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nXY",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nleft\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 4092) + "\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 4093) + "\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 4094) + "\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 4095) + "\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 9000) + "\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 100) + "0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 70) + "0;" + strings.Repeat("e", 3000) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1\r\nx\r\n", 300) + "0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + strings.Repeat("d", 4096) + "\r\n0\r\n\r\n",

	// Trailers.
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nFoo: bar\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Foo, bar\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nFoo: 1\r\nBaz: 2\r\nfoo: 3\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Foo\r\nTrailer: ,, grpc-status ,\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer:\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: foo bar, x\xffy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Foo\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nTrailer: content-length\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Foo, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: trailer\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 204 No Content\r\nTrailer: Foo\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: bar\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: bar\r\n\r",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: bar\n\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n Foo: bar\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo bar\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: a\r\n b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: a\x00\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: " + strings.Repeat("t", 5000) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: " + strings.Repeat("t", 30) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: " + strings.Repeat("t", 9000) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: " + strings.Repeat("t", 8180) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: " + strings.Repeat("t", 8181) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: " + strings.Repeat("t", 4084) + "\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nFoo: " + strings.Repeat("t", 4085) + "\r\n\r\n",

	// Bodies without a length, and none.
	"HTTP/1.1 200 OK\r\n\r\nhello, until the connection closes",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b.js>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
	"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 3\r\n\r\nabc",

	// Pipelined: each must leave the reader exactly at the next.
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: A\r\n\r\n1\r\nx\r\n0\r\nA: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nX: 1\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a\r\nX: 2\r\nPragma: no-cache\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: 2\r\nSet-Cookie: c\r\nSet-Cookie: a\r\nSet-Cookie: d\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
}

// TestResponseDifferential reads every case with every method and shape,
// with net/http and with ReadResponse, and wants the same outcome.
func TestResponseDifferential(t *testing.T) {
	for i, raw := range respCases {
		for _, method := range respMethods {
			for _, shape := range respShapes {
				if err := respCompare([]byte(raw), method, shape); err != nil {
					t.Errorf("case %d %.60q, method %q, shape %s: %v", i, raw, method, shape.name, err)
				}
			}
		}
	}
}

// TestResponseReusedAcrossCases reads the first response of every case,
// in turn, into one Response, and wants each to be what net/http reads:
// nothing carries over, neither from a full read nor from a head read
// again and left with its body unread (or failed).
func TestResponseReusedAcrossCases(t *testing.T) {
	for _, method := range respMethods {
		var resp Response
		for i, raw := range respCases {
			shape := respShapes[i%len(respShapes)]
			want := respNetHTTP(newRespStream([]byte(raw), shape), method, shape.readSize)
			got, _, err := respOurs(newRespStream([]byte(raw), shape), method, shape.readSize, &resp)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("case %d %.60q, method %q: %v\n got %+v\nwant %+v", i, raw, method, err, got, want)
			}
			ReadResponse(newRespStream([]byte(raw), shape).br, method, &resp) // the body left unread
		}
	}
}

// respTestResponse is a typical small response: five fields, a 2-byte body.
const respTestResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
	"Server: user-container\r\n" +
	"X-Request-Id: 4bf92f3577b34da6\r\n" +
	"Content-Length: 2\r\n" +
	"\r\n" +
	"ok"

// respLoop returns its bytes again and again, forever.
type respLoop struct {
	data []byte
	off  int
}

func (l *respLoop) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

// respReadTypical reads one respTestResponse with resp, reused.
func respReadTypical(br *bufio.Reader, resp *Response, buf []byte) error {
	if err := ReadResponse(br, http.MethodGet, resp); err != nil {
		return err
	}
	body, err := resp.Body(br)
	if err != nil {
		return err
	}
	n, err := io.ReadFull(body, buf[:2])
	if err != nil || n != 2 || !resp.Complete() {
		return fmt.Errorf("body: %d bytes, %v, complete %v", n, err, resp.Complete())
	}
	return nil
}

// TestResponseSteadyStateAllocs wants a reused Response to read a repeated
// typical response without allocating.
func TestResponseSteadyStateAllocs(t *testing.T) {
	br := bufio.NewReader(&respLoop{data: []byte(respTestResponse)})
	var resp Response
	buf := make([]byte, 16)
	if err := respReadTypical(br, &resp, buf); err != nil { // warm up
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := respReadTypical(br, &resp, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per response, want 0", allocs)
	}
}

func BenchmarkResponse(b *testing.B) {
	br := bufio.NewReader(&respLoop{data: []byte(respTestResponse)})
	var resp Response
	buf := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		if err := respReadTypical(br, &resp, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponseNetHTTP is the same with net/http, for reference.
func BenchmarkResponseNetHTTP(b *testing.B) {
	br := bufio.NewReader(&respLoop{data: []byte(respTestResponse)})
	req := &http.Request{Method: http.MethodGet}
	buf := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		res, err := http.ReadResponse(br, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(res.Body, buf[:2]); err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
	}
}

// errRespWouldBlock is what respSegments returns once its bytes run out: a
// read that far would have waited for the peer.
var errRespWouldBlock = errors.New("test: the read would have waited for more input")

// respSegments returns its bytes, then errRespWouldBlock.
type respSegments struct{ data []byte }

func (s *respSegments) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, errRespWouldBlock
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

// TestResponseBodyDoesNotWait wants Read to return the body bytes that
// have arrived without waiting for more, and Complete to stay false.
func TestResponseBodyDoesNotWait(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "hello"},
		{"until-close", "HTTP/1.1 200 OK\r\n\r\nhello", "hello"},
		{"whole chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "hello"},
		{"chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello", "hello"},
		{"partial chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello", "hello"},
		{"two chunks", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n4", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(&respSegments{data: []byte(tc.raw)})
			var resp Response
			if err := ReadResponse(br, "GET", &resp); err != nil {
				t.Fatal(err)
			}
			body, err := resp.Body(br)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := body.Read(buf)
			if string(buf[:n]) != tc.want || err != nil {
				t.Errorf("Read = %q, %v; want %q, nil", buf[:n], err, tc.want)
			}
			if resp.Complete() {
				t.Error("Complete before the end of the body")
			}
			if _, err := body.Read(buf); err != errRespWouldBlock {
				t.Errorf("next Read: %v, want the source's error", err)
			}
			if _, err := body.Read(buf); err != errRespWouldBlock {
				t.Errorf("Read after an error: %v, want the same error again", err)
			}
			if resp.Complete() {
				t.Error("Complete after an error")
			}
		})
	}
}

// TestResponseEOFWithLastBytes wants the end of a body reported with its
// last bytes when the framing after them is buffered, so that the caller
// knows the connection is free without another Read.
func TestResponseEOFWithLastBytes(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nA: b\r\n\r\n",
	} {
		br := bufio.NewReader(strings.NewReader(raw))
		var resp Response
		if err := ReadResponse(br, "GET", &resp); err != nil {
			t.Fatal(err)
		}
		body, _ := resp.Body(br)
		buf := make([]byte, 64)
		if n, err := body.Read(buf); string(buf[:n]) != "hello" || err != io.EOF || !resp.Complete() {
			t.Errorf("%q: Read = %q, %v, Complete %v; want hello, EOF, true", raw, buf[:n], err, resp.Complete())
		}
	}
}

// TestResponseBodyMisuse wants Body to refuse without a head, or with a
// reader other than the head's.
func TestResponseBodyMisuse(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
	br := bufio.NewReader(strings.NewReader(raw))
	var resp Response
	if _, err := resp.Body(br); err != errRespNoHead {
		t.Errorf("Body before a head: %v", err)
	}
	if resp.Complete() {
		t.Error("Complete before a head")
	}
	if err := ReadResponse(br, "GET", &resp); err != nil {
		t.Fatal(err)
	}
	if _, err := resp.Body(bufio.NewReader(strings.NewReader(raw))); err != errRespOtherReader {
		t.Errorf("Body with another reader: %v", err)
	}
	if err := ReadResponse(br, "GET", &resp); err == nil {
		t.Fatal("a head from the body's bytes")
	}
	if _, err := resp.Body(br); err != errRespNoHead {
		t.Errorf("Body after a failed head: %v", err)
	}
	resp.Reset()
	if resp.Complete() || resp.StatusCode != 0 || len(resp.Header) != 0 || resp.Trailer != nil {
		t.Errorf("after Reset: %+v", resp)
	}
}

// TestResponseHeadLimit wants a head of MaxResponseHeadBytes read and one
// byte more refused.
func TestResponseHeadLimit(t *testing.T) {
	const start, end = "HTTP/1.1 204 No Content\r\nBig: ", "\r\n\r\n"
	for _, tc := range []struct {
		name string
		fill int
		err  error
	}{
		{"at the limit", MaxResponseHeadBytes - len(start) - len(end), nil},
		{"one byte over", MaxResponseHeadBytes - len(start) - len(end) + 1, errRespHeadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := start + strings.Repeat("x", tc.fill) + end
			var resp Response
			err := ReadResponse(bufio.NewReader(strings.NewReader(raw)), "GET", &resp)
			if err != tc.err {
				t.Errorf("ReadResponse: %v, want %v", err, tc.err)
			}
		})
	}
	t.Run("folded", func(t *testing.T) {
		raw := start + "x\r\n" + strings.Repeat(" ", MaxResponseHeadBytes) + "y" + end
		var resp Response
		if err := ReadResponse(bufio.NewReader(strings.NewReader(raw)), "GET", &resp); err != errRespHeadTooLarge {
			t.Errorf("ReadResponse: %v, want %v", err, errRespHeadTooLarge)
		}
	})
}
