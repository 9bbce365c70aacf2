package ingest

import (
	"fmt"

	"github.com/wirelog/wirelog/internal/event"
)

// Record formats HTTP ingest can write into the log (--ingest-record-format).
const (
	// RecordFormatAuto is binary on the embedded log, which only wirelog
	// reads, and JSON on Kafka, whose topic other consumers may read.
	RecordFormatAuto = "auto"
	// RecordFormatBinary is the binary event record (event.AppendBinary):
	// the processor copies its fields instead of parsing JSON a second time.
	RecordFormatBinary = "binary"
	// RecordFormatJSON is the JSON record (event.AppendJSON), readable by
	// any consumer of the topic.
	RecordFormatJSON = "json"

	// DefaultRecordFormat is --ingest-record-format's default.
	DefaultRecordFormat = RecordFormatAuto
)

// RecordFormats lists the values of --ingest-record-format.
var RecordFormats = []string{RecordFormatAuto, RecordFormatBinary, RecordFormatJSON}

// ResolveRecordFormat turns --ingest-record-format into the format ingest
// writes, given whether the log is Kafka.
func ResolveRecordFormat(name string, kafka bool) (event.RecordFormat, error) {
	switch name {
	case "", RecordFormatAuto:
		if kafka {
			return event.RecordJSON, nil
		}
		return event.RecordBinary, nil
	case RecordFormatBinary:
		return event.RecordBinary, nil
	case RecordFormatJSON:
		return event.RecordJSON, nil
	}
	return 0, fmt.Errorf("--ingest-record-format %q is not a record format; use auto, binary or json", name)
}
