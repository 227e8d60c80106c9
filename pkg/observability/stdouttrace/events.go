package stdouttrace

import (
	"go.opencensus.io/trace"
)

// Names the OpenTelemetry OpenCensus bridge gives message events and their
// attributes.
const (
	messageSendEvent    = "message send"
	messageReceiveEvent = "message receive"
	uncompressedKey     = "uncompressed byte size"
	compressedKey       = "compressed byte size"
)

// events appends the annotations and message events as one list of SDK
// Events in time order (annotations first on equal times), or null when
// there are none.
func (e *encoder) events(annotations []trace.Annotation, messages []trace.MessageEvent) {
	if len(annotations)+len(messages) == 0 {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, j := 0, 0; i < len(annotations) || j < len(messages); {
		if i+j > 0 {
			e.b = append(e.b, ',')
		}
		if i < len(annotations) && (j == len(messages) || !messages[j].Time.Before(annotations[i].Time)) {
			a := &annotations[i]
			e.b = append(e.b, `{"Name":`...)
			e.b = appendString(e.b, a.Message)
			e.b = append(e.b, `,"Attributes":`...)
			e.ocAttrs(a.Attributes, false)
			e.b = append(e.b, `,"DroppedAttributeCount":0,"Time":`...)
			e.time(a.Time)
			i++
		} else {
			m := &messages[j]
			name := messageReceiveEvent
			if m.EventType == trace.MessageEventTypeSent {
				name = messageSendEvent
			}
			e.b = append(e.b, `{"Name":"`...)
			e.b = append(e.b, name...)
			e.b = append(e.b, `","Attributes":[`...)
			e.keyValue(uncompressedKey, m.UncompressedByteSize)
			e.b = append(e.b, ',')
			e.keyValue(compressedKey, m.CompressedByteSize)
			e.b = append(e.b, `],"DroppedAttributeCount":0,"Time":`...)
			e.time(m.Time)
			j++
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ']')
}

// links appends the links as SDK Links, or null when there are none. A
// link to an invalid span context without attributes is left out, as the
// SDK's AddLink leaves it out.
func (e *encoder) links(links []trace.Link) {
	n := 0
	for i := range links {
		l := &links[i]
		valid := l.TraceID != (trace.TraceID{}) && l.SpanID != (trace.SpanID{})
		if !valid && len(l.Attributes) == 0 {
			continue
		}
		if n == 0 {
			e.b = append(e.b, '[')
		} else {
			e.b = append(e.b, ',')
		}
		n++
		e.b = append(e.b, `{"SpanContext":`...)
		e.spanContext(l.TraceID[:], l.SpanID[:], 0, nil, false)
		e.b = append(e.b, `,"Attributes":`...)
		e.ocAttrs(l.Attributes, false)
		e.b = append(e.b, `,"DroppedAttributeCount":0}`...)
	}
	if n == 0 {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, ']')
}
