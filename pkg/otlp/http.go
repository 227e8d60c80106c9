package otlp

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The HTTP/protobuf transport (OTLP/HTTP): a POST of the serialized
// request with Content-Type application/x-protobuf (and Content-Encoding
// gzip when compressed). A 2xx answer is success; its body, when
// application/x-protobuf, is the Export*ServiceResponse. Otherwise the
// status decides, as in the OpenTelemetry Go exporters: 429, 502, 503 and
// 504 are retried, honouring Retry-After (seconds or an HTTP date); any
// other status is final. The error carries the message of the body: a
// google.rpc.Status when application/x-protobuf (as the OTLP spec has
// collectors answer), else its text, truncated.

// maxErrorText bounds the part of an error body quoted in errors.
const maxErrorText = 512

func (c *Client) httpAttempt(ctx context.Context, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.urlStr, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header = c.header.Clone()
	resp, err := c.do(req)
	if err != nil {
		return transportError(c.url, err)
	}
	defer resp.Body.Close()
	body, readErr := readBounded(resp.Body)
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if readErr != nil {
			return errors.New("collector accepted the export but its response does not read: " + readErr.Error())
		}
		if len(body) == 0 || !isMediaType(ct, "application/x-protobuf") {
			return nil
		}
		return c.partialSuccessResult(body)
	}
	err = &StatusError{Protocol: HTTPProtobuf, HTTPStatus: resp.StatusCode, Message: httpErrorMessage(ct, body)}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return retryable(err, retryAfter(resp.Header.Get("Retry-After"), c.retrier.clock.Now()))
	}
	return err
}

// isMediaType reports whether the Content-Type ct is of media type mt,
// ignoring parameters and case.
func isMediaType(ct, mt string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), mt)
}

// httpErrorMessage is the message of an error body.
func httpErrorMessage(ct string, body []byte) string {
	if isMediaType(ct, "application/x-protobuf") {
		if st, err := decodeStatus(body); err == nil {
			return truncateText(st.message)
		}
	}
	return truncateText(string(body))
}

// truncateText makes s fit for a log line: trimmed, valid UTF-8, at most
// maxErrorText bytes.
func truncateText(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
	if len(s) <= maxErrorText {
		return s
	}
	i := maxErrorText
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// retryAfter is the delay a Retry-After value asks for at now: a number of
// seconds or an HTTP date; 0 if it is neither or in the past.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		if secs > math.MaxInt64/int64(time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
