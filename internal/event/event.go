// Package event holds wirelog's event model: the fields every log event has,
// their normalisation (timestamps, levels), and the compact JSON encoding that
// travels through the log (embedded or Kafka) to the processors.
package event

import "time"

// Level is a normalised severity.
type Level uint8

// Levels, lowest first. LevelUnknown is stored as "info" would hide a bug, so
// it is kept distinct and shown as "unknown".
const (
	LevelUnknown Level = iota
	LevelTrace
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelFatal
)

var levelNames = [...]string{"unknown", "trace", "debug", "info", "warn", "error", "fatal"}

// String returns the normalised name ("trace" … "fatal").
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "unknown"
}

// Levels lists the normalised level names, lowest first (without "unknown").
func Levels() []string { return append([]string(nil), levelNames[1:]...) }

// Event is one normalised log event.
//
// Attrs holds every field that is not one of the named ones, as a JSON object
// (raw bytes, already valid JSON), so attributes survive untouched without a
// map allocation per event.
type Event struct {
	Time    time.Time // event time; arrival time when the sender gave none
	Service string
	Level   Level
	Message string
	Host    string
	TraceID string
	SpanID  string
	Tenant  string
	Attrs   []byte // JSON object or nil
}

// Reset clears e for reuse, keeping the capacity of Attrs.
func (e *Event) Reset() {
	attrs := e.Attrs[:0]
	*e = Event{Attrs: attrs}
}
