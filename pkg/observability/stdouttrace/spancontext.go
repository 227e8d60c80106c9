package stdouttrace

import (
	"time"

	"go.opencensus.io/trace/tracestate"
)

// zeroID is the bytes of an invalid (all-zero) trace or span ID.
var zeroID [16]byte

// spanContext appends a SpanContext as the SDK marshals it: TraceID and
// SpanID in hex, TraceFlags as two hex digits, TraceState in its W3C form
// and Remote.
func (e *encoder) spanContext(traceID, spanID []byte, flags byte, state []tracestate.Entry, remote bool) {
	e.b = append(e.b, `{"TraceID":"`...)
	e.b = appendHex(e.b, traceID)
	e.b = append(e.b, `","SpanID":"`...)
	e.b = appendHex(e.b, spanID)
	e.b = append(e.b, `","TraceFlags":"`...)
	e.b = append(e.b, hexDigits[flags>>4], hexDigits[flags&0xf])
	e.b = append(e.b, `","TraceState":`...)
	e.traceState(state)
	if remote {
		e.b = append(e.b, `,"Remote":true}`...)
	} else {
		e.b = append(e.b, `,"Remote":false}`...)
	}
}

// traceState appends the entries as one JSON string "k1=v1,k2=v2".
func (e *encoder) traceState(entries []tracestate.Entry) {
	if len(entries) == 0 {
		e.b = append(e.b, `""`...)
		return
	}
	// The W3C grammar leaves only the value's <, > and & to escape, and
	// appendString escapes a string piecewise just as it does whole.
	e.b = append(e.b, '"')
	for i, entry := range entries {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendStringBody(e.b, entry.Key)
		e.b = append(e.b, '=')
		e.b = appendStringBody(e.b, entry.Value)
	}
	e.b = append(e.b, '"')
}

// time appends a timestamp, noting one encoding/json refuses.
func (e *encoder) time(t time.Time) {
	var ok bool
	if e.b, ok = appendTime(e.b, t); !ok {
		e.failed = true
	}
}
