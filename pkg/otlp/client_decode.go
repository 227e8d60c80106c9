package otlp

import (
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
)

// Decoders of what a collector sends back, all untrusted input:
//
//   - Export{Metrics,Trace}ServiceResponse (collector/{metrics,trace}/v1):
//     partial_success = 1 { rejected_data_points | rejected_spans = 1
//     (int64), error_message = 2 (string) }. Both signals share the shape.
//   - google.rpc.Status (the gRPC grpc-status-details-bin trailer, and the
//     body of an OTLP/HTTP error): code = 1 (int32), message = 2 (string),
//     details = 3 (repeated google.protobuf.Any { type_url = 1, value = 2 }),
//     of which we read google.rpc.RetryInfo { retry_delay = 1
//     (google.protobuf.Duration { seconds = 1 (int64), nanos = 2 (int32) }) }.
//
// They accept exactly what google.golang.org/protobuf's generated types
// accept (unknown fields skipped, a field with an unexpected wire type
// treated as unknown, repeated occurrences of a message field merged, the
// last scalar winning, strings required to be UTF-8), which the fuzz
// targets check against those types.

// Field numbers.
const (
	responsePartialSuccess = 1 // Export*ServiceResponse.partial_success
	partialRejected        = 1 // Export*PartialSuccess.rejected_data_points / rejected_spans
	partialErrorMessage    = 2 // Export*PartialSuccess.error_message

	rpcStatusCode    = 1 // google.rpc.Status.code
	rpcStatusMessage = 2 // google.rpc.Status.message
	rpcStatusDetails = 3 // google.rpc.Status.details
	anyTypeURL       = 1 // google.protobuf.Any.type_url
	anyValue         = 2 // google.protobuf.Any.value
	retryInfoDelay   = 1 // google.rpc.RetryInfo.retry_delay
	durationSeconds  = 1 // google.protobuf.Duration.seconds
	durationNanos    = 2 // google.protobuf.Duration.nanos
)

// retryInfoName is RetryInfo's full name: an Any whose type URL ends in
// "/google.rpc.RetryInfo" (or is just the name) holds one.
const retryInfoName = "google.rpc.RetryInfo"

var errUTF8 = errors.New("protobuf: string field is not valid UTF-8")

// fieldFunc receives one field of a message: its number, wire type, and
// its value (for varints, v; for length-delimited fields, b).
type fieldFunc func(num uint32, typ pbwire.Type, v uint64, b []byte) error

// eachField walks the fields of message b.
func eachField(b []byte, fn fieldFunc) error {
	for len(b) > 0 {
		num, typ, n, err := pbwire.ConsumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		var v uint64
		var val []byte
		switch typ {
		case pbwire.VarintType:
			if v, n, err = pbwire.ConsumeVarint(b); err != nil {
				return err
			}
		case pbwire.BytesType:
			if n, err = pbwire.ConsumeFieldValue(num, typ, b); err != nil {
				return err
			}
			val = b[lenPrefix(b):n]
		default:
			if n, err = pbwire.ConsumeFieldValue(num, typ, b); err != nil {
				return err
			}
		}
		b = b[n:]
		if err := fn(num, typ, v, val); err != nil {
			return err
		}
	}
	return nil
}

// lenPrefix is the length of the varint length prefix at the start of b,
// already known to be valid.
func lenPrefix(b []byte) int {
	_, n, _ := pbwire.ConsumeVarint(b)
	return n
}

// partialSuccess is the content of an Export*ServiceResponse.
type partialSuccess struct {
	rejected int64
	message  string
}

// decodePartialSuccess decodes an Export*ServiceResponse.
func decodePartialSuccess(b []byte) (partialSuccess, error) {
	var ps partialSuccess
	err := eachField(b, func(num uint32, typ pbwire.Type, _ uint64, val []byte) error {
		if num != responsePartialSuccess || typ != pbwire.BytesType {
			return nil
		}
		return eachField(val, func(num uint32, typ pbwire.Type, v uint64, val []byte) error {
			switch {
			case num == partialRejected && typ == pbwire.VarintType:
				ps.rejected = int64(v)
			case num == partialErrorMessage && typ == pbwire.BytesType:
				if !utf8.Valid(val) {
					return errUTF8
				}
				ps.message = string(val)
			}
			return nil
		})
	})
	return ps, err
}

// rpcStatus is the part of a google.rpc.Status we use.
type rpcStatus struct {
	code    int32
	message string
	// retryDelay is the first RetryInfo detail's delay, negative ones as 0;
	// hasRetryInfo says whether there was one.
	retryDelay   time.Duration
	hasRetryInfo bool
}

// decodeStatus decodes a google.rpc.Status. A RetryInfo detail that does
// not decode is ignored, as status.Details() reports it as an error value
// that callers looking for a RetryInfo skip.
func decodeStatus(b []byte) (rpcStatus, error) {
	var st rpcStatus
	err := eachField(b, func(num uint32, typ pbwire.Type, v uint64, val []byte) error {
		switch {
		case num == rpcStatusCode && typ == pbwire.VarintType:
			st.code = int32(v)
		case num == rpcStatusMessage && typ == pbwire.BytesType:
			if !utf8.Valid(val) {
				return errUTF8
			}
			st.message = string(val)
		case num == rpcStatusDetails && typ == pbwire.BytesType:
			typeURL, value, err := decodeAny(val)
			if err != nil {
				return err
			}
			if st.hasRetryInfo || typeName(typeURL) != retryInfoName {
				return nil
			}
			if d, err := decodeRetryInfo(value); err == nil {
				st.retryDelay, st.hasRetryInfo = d, true
			}
		}
		return nil
	})
	return st, err
}

// typeName is the message name of an Any's type URL: what follows the last
// '/'.
func typeName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}

func decodeAny(b []byte) (typeURL string, value []byte, err error) {
	err = eachField(b, func(num uint32, typ pbwire.Type, _ uint64, val []byte) error {
		switch {
		case num == anyTypeURL && typ == pbwire.BytesType:
			if !utf8.Valid(val) {
				return errUTF8
			}
			typeURL = string(val)
		case num == anyValue && typ == pbwire.BytesType:
			value = val
		}
		return nil
	})
	return typeURL, value, err
}

func decodeRetryInfo(b []byte) (time.Duration, error) {
	var secs int64
	var nanos int32
	err := eachField(b, func(num uint32, typ pbwire.Type, _ uint64, val []byte) error {
		if num != retryInfoDelay || typ != pbwire.BytesType {
			return nil
		}
		return eachField(val, func(num uint32, typ pbwire.Type, v uint64, _ []byte) error {
			switch {
			case num == durationSeconds && typ == pbwire.VarintType:
				secs = int64(v)
			case num == durationNanos && typ == pbwire.VarintType:
				nanos = int32(v)
			}
			return nil
		})
	})
	return durationOf(secs, nanos), err
}

// durationOf is seconds and nanoseconds as a Duration, saturated at the
// largest Duration and, being a delay, at least 0.
func durationOf(secs int64, nanos int32) time.Duration {
	const maxSecs = math.MaxInt64 / int64(time.Second)
	switch {
	case secs > maxSecs:
		return math.MaxInt64
	case secs < -maxSecs:
		return 0
	}
	d, n := time.Duration(secs)*time.Second, time.Duration(nanos)
	switch {
	case n > 0 && d > math.MaxInt64-n:
		return math.MaxInt64
	case n < 0 && d < math.MinInt64-n:
		return 0
	}
	return max(d+n, 0)
}
