package upstream

import "testing"

// FuzzReadResponse reads arbitrary bytes as pipelined responses with
// net/http and with one reused Response, for a request method and a read
// shape (buffer size, how the source returns bytes, body read size) chosen
// by index, and wants the same outcome for each response: every field,
// the trailer, the body's bytes and how it ended, the stream position
// after it; Complete exactly when the body ended in io.EOF. It must never
// panic or hang. It is seeded with the differential table's cases, but for
// the few kilobyte-long ones (they slow the fuzzer down and the table
// covers them).
func FuzzReadResponse(f *testing.F) {
	for i, raw := range respCases {
		if len(raw) <= respMaxFuzzSeed {
			f.Add([]byte(raw), uint8(i%len(respMethods)), uint8(i%len(respShapes)))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, method, shape uint8) {
		m := respMethods[int(method)%len(respMethods)]
		s := respShapes[int(shape)%len(respShapes)]
		if err := respCompare(data, m, s); err != nil {
			t.Fatalf("method %q, shape %s: %v", m, s.name, err)
		}
	})
}

// respMaxFuzzSeed bounds the length of the table cases that seed the fuzzer.
const respMaxFuzzSeed = 1024
