package certificate

import (
	"testing"

	"go.uber.org/goleak"
)

// The watcher starts a goroutine (and fsnotify another); Stop must end both.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
