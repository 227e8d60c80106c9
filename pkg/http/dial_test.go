package http

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// timeoutErr is what a dial that ran out of time returns.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestBackoffDialer(t *testing.T) {
	conn, peer := net.Pipe()
	defer conn.Close()
	defer peer.Close()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

	cases := []struct {
		name         string
		results      []error // per attempt; nil = success
		wantAttempts int
		wantErr      func(error) bool
	}{
		{name: "first attempt succeeds", results: []error{nil}, wantAttempts: 1, wantErr: func(err error) bool { return err == nil }},
		{name: "refused fails at once", results: []error{refused}, wantAttempts: 1, wantErr: func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{name: "timeouts are retried", results: []error{timeoutErr{}, timeoutErr{}, nil}, wantAttempts: 3, wantErr: func(err error) bool { return err == nil }},
		{name: "timeout then refused", results: []error{timeoutErr{}, refused}, wantAttempts: 2, wantErr: func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{name: "every attempt times out", results: nil, wantAttempts: 16, wantErr: func(err error) bool {
			return errors.Is(err, ErrTimeoutDialing) && strings.HasPrefix(err.Error(), "timed out dialing 127.0.0.1:9 after ") && strings.HasSuffix(err.Error(), "s")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var timeouts []time.Duration
			d := NewBackoffDialer()
			d.Sleep = 0
			d.dial = func(_ context.Context, timeout time.Duration, _, _ string) (net.Conn, error) {
				timeouts = append(timeouts, timeout)
				i := len(timeouts) - 1
				if i < len(tc.results) && tc.results[i] == nil {
					return conn, nil
				}
				if i < len(tc.results) {
					return nil, tc.results[i]
				}
				return nil, timeoutErr{}
			}
			c, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
			if !tc.wantErr(err) {
				t.Fatalf("error = %v", err)
			}
			if (err == nil) != (c != nil) {
				t.Errorf("conn %v with error %v", c, err)
			}
			if len(timeouts) != tc.wantAttempts {
				t.Fatalf("%d attempts, want %d", len(timeouts), tc.wantAttempts)
			}
			// Per-attempt timeouts start at 50 ms and grow by 1.4x (+ <=10% jitter).
			if timeouts[0] != 50*time.Millisecond {
				t.Errorf("first timeout %v, want 50ms", timeouts[0])
			}
			base := 50 * time.Millisecond
			for i := 1; i < len(timeouts); i++ {
				base = time.Duration(float64(base) * 1.4)
				if timeouts[i] < base || timeouts[i] > base+base/10 {
					t.Errorf("attempt %d timeout %v, want %v..%v", i, timeouts[i], base, base+base/10)
				}
			}
		})
	}
}

func TestBackoffDialerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d := NewBackoffDialer()
	attempts := 0
	d.dial = func(context.Context, time.Duration, string, string) (net.Conn, error) {
		attempts++
		cancel() // the client went away during the first attempt
		return nil, timeoutErr{}
	}
	if _, err := d.DialContext(ctx, "tcp", "127.0.0.1:9"); err == nil {
		t.Fatal("dial succeeded, want the attempt's error")
	}
	if attempts != 1 {
		t.Errorf("%d attempts after cancellation, want 1", attempts)
	}
}

// TestBackoffDialerRealRefused dials a closed loopback port for real.
func TestBackoffDialerRealRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = NewBackoffDialer().DialContext(context.Background(), "tcp", addr)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error = %v, want connection refused", err)
	}
}
