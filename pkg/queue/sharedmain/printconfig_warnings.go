package sharedmain

import (
	"fmt"
	"slices"
	"sort"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newWarningLogger returns a logger that keeps what is logged at warning
// level and above, as "message key=value ...", in the slice it returns, so
// that the document shows the warnings startup would log.
func newWarningLogger() (*zap.SugaredLogger, *[]string) {
	msgs := new([]string)
	return zap.New(warningCore{msgs: msgs}).Sugar(), msgs
}

// warningCore is the zapcore.Core of newWarningLogger. Not safe for
// concurrent use; checkEnv logs from one goroutine.
type warningCore struct {
	msgs   *[]string
	fields []zapcore.Field
}

func (c warningCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c warningCore) With(fields []zapcore.Field) zapcore.Core {
	return warningCore{msgs: c.msgs, fields: append(slices.Clip(c.fields), fields...)}
}

func (c warningCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c warningCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(slices.Clip(c.fields), fields...) {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msg := e.Message
	for _, k := range keys {
		msg += fmt.Sprintf(" %s=%v", k, enc.Fields[k])
	}
	*c.msgs = append(*c.msgs, msg)
	return nil
}

func (c warningCore) Sync() error { return nil }
