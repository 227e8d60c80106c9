package sharedmain

import (
	"errors"
	"reflect"
	"testing"

	"go.uber.org/zap"
)

// TestWarningLogger: warnings and errors are kept as "message key=value",
// fields sorted, With fields included; lower levels are dropped.
func TestWarningLogger(t *testing.T) {
	logger, msgs := newWarningLogger()
	logger.Info("not kept")
	logger.Debugw("not kept either", "k", "v")
	logger.Warn("plain warning")
	logger.Warnf("formatted %d", 7)
	logger.With("server", "main").Warnw("with fields", zap.Error(errors.New("boom")), "b", 2)
	logger.Errorw("an error", "a", true)
	want := []string{
		"plain warning",
		"formatted 7",
		"with fields b=2 error=boom server=main",
		"an error a=true",
	}
	if !reflect.DeepEqual(*msgs, want) {
		t.Errorf("kept %q, want %q", *msgs, want)
	}
}
