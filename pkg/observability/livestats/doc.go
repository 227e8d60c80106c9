// Package livestats keeps the live, windowed request figures behind the
// /debug/stats endpoint, in the style of jaeger-lib's local metrics backend:
// request counts, rates and outcomes (admitted, queue full, timeout,
// upstream error) and P50/P90/P99/P99.9 of total time, queue wait and
// user-container time, over the last 10 s, 1 min and 10 min.
//
// The proxy calls Recorder.Record once per request (lock-free, no
// allocation, no clock read), Recorder.Rotate from its 1 s ticker, and
// Recorder.Snapshot when the endpoint is read; the Snapshot encodes to JSON
// or to a plain-text table (Snapshot.WriteText). In-flight and queued
// requests are the breaker's gauges: the caller puts them into the
// Snapshot.
//
// recorder.go states the windows' guarantees and the memory used,
// histogram.go the bucket layout and the percentiles' error bound.
package livestats
