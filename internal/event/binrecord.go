package event

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Binary event records.
//
// HTTP ingest (NDJSON, JSON, OTLP, the Elasticsearch and Loki APIs) decodes
// and validates every event anyway, to answer the sender line by line. The
// JSON record (AppendJSON) then made the processor parse JSON a second time:
// fastjson, the RFC 3339 timestamp, the attribute object re-encoded — about
// a microsecond an event, a quarter of the whole run's CPU (issue 12,
// docs/bench/store.md). The binary record carries the normalised event as
// length-prefixed fields, so the processor only copies them.
//
// A JSON record starts with '{' and a raw syslog record with NUL 'S'; a
// binary event record starts with NUL 'E', so the processor tells the three
// apart by their first bytes and logs written before stay readable. Layout,
// version 1 (integers big-endian, lengths unsigned varints):
//
//	off size field
//	0   1    0x00
//	1   1    'E'
//	2   1    version (1)
//	3   1    flags (0; a reader refuses bits it does not know)
//	4   8    event time, Unix nanoseconds
//	12  1    level (Level: 0 unknown … 6 fatal)
//	13  …    service, message, host, trace_id, span_id, tenant, attrs:
//	         each a length then its bytes; attrs is a JSON object or empty
//
// Strings are written as decoded; the reader replaces bytes that are not
// UTF-8 with U+FFFD, as AppendJSON does, so both records give one event.
const (
	binRecordVersion = 1
	binRecordHeader  = 13
	binRecordFields  = 7
)

// Times a binary record can carry: Unix nanoseconds in an int64. Ingest
// accepts 1970..2200 only; an event outside this range is written as a JSON
// record instead (AppendRecord).
var (
	minBinaryTime = time.Unix(0, 0)
	maxBinaryTime = time.Unix(0, 1<<63-1)
)

// ErrBinaryRecord means a record marked as a binary event record is not one
// (damaged, cut short, or written by a newer wirelog).
var ErrBinaryRecord = errors.New("malformed binary event record")

// IsBinaryRecord reports whether b is a binary event record.
func IsBinaryRecord(b []byte) bool { return len(b) >= 2 && b[0] == 0 && b[1] == 'E' }

// BinaryFits reports whether e can be written as a binary record.
func BinaryFits(e *Event) bool {
	return !e.Time.Before(minBinaryTime) && !e.Time.After(maxBinaryTime) && e.Level <= LevelFatal
}

// AppendBinary appends the binary record of e to dst. The caller checks
// BinaryFits first (AppendRecord does).
func AppendBinary(dst []byte, e *Event) []byte {
	dst = append(dst, 0, 'E', binRecordVersion, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Time.UnixNano()))
	dst = append(dst, byte(e.Level))
	dst = appendBinString(dst, e.Service)
	dst = appendBinString(dst, e.Message)
	dst = appendBinString(dst, e.Host)
	dst = appendBinString(dst, e.TraceID)
	dst = appendBinString(dst, e.SpanID)
	dst = appendBinString(dst, e.Tenant)
	attrs := e.Attrs
	if len(attrs) <= 2 { // "{}" carries nothing, as in the JSON record
		attrs = nil
	}
	dst = binary.AppendUvarint(dst, uint64(len(attrs)))
	return append(dst, attrs...)
}

func appendBinString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// RecordFormat is how ingest writes an event into the log.
type RecordFormat uint8

const (
	// RecordJSON is the JSON record (AppendJSON): any consumer of a Kafka
	// topic can read it.
	RecordJSON RecordFormat = iota
	// RecordBinary is the binary record (AppendBinary): cheaper to write
	// and to read, for wirelog's own processors.
	RecordBinary
)

// AppendRecord appends e's record in format f; an event the binary record
// cannot carry is written as JSON (the reader tells them apart).
func AppendRecord(dst []byte, e *Event, f RecordFormat) []byte {
	if f == RecordBinary && BinaryFits(e) {
		return AppendBinary(dst, e)
	}
	return AppendJSON(dst, e)
}

// DecodeBinaryRecord decodes a binary event record into e, copying every
// string into arena so e outlives data. It yields the event the JSON record
// of the same event gives DecodeRecord, and size, the length of that JSON
// record (AppendJSON): the processor counts it as the event's size, so the
// bytes the store sums do not depend on the record format.
func DecodeBinaryRecord(data []byte, arena *Arena, e *Event) (size int, err error) {
	e.Reset()
	if !IsBinaryRecord(data) || len(data) < binRecordHeader {
		return 0, fmt.Errorf("%w: %d bytes", ErrBinaryRecord, len(data))
	}
	if data[2] != binRecordVersion {
		return 0, fmt.Errorf("%w: version %d, this wirelog reads %d (upgrade the processor)", ErrBinaryRecord, data[2], binRecordVersion)
	}
	if data[3] != 0 {
		return 0, fmt.Errorf("%w: unknown flags 0x%02x (upgrade the processor)", ErrBinaryRecord, data[3])
	}
	ns := int64(binary.BigEndian.Uint64(data[4:12]))
	if ns < 0 {
		return 0, fmt.Errorf("%w: time before 1970", ErrBinaryRecord)
	}
	lvl := Level(data[12])
	if lvl > LevelFatal {
		return 0, fmt.Errorf("%w: level %d", ErrBinaryRecord, lvl)
	}
	// One copy of the fields into the arena; the strings are cut from it.
	body := arena.Bytes(data[binRecordHeader:])
	var f [binRecordFields][]byte
	rest := body
	for i := range f {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return 0, fmt.Errorf("%w: field %d cut short", ErrBinaryRecord, i+1)
		}
		f[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 {
		return 0, fmt.Errorf("%w: %d bytes after the last field", ErrBinaryRecord, len(rest))
	}
	if a := f[6]; len(a) > 0 && (len(a) < 2 || a[0] != '{' || a[len(a)-1] != '}') {
		return 0, fmt.Errorf("%w: attrs is not a JSON object", ErrBinaryRecord)
	}
	// The JSON record's length, from the fields as written: AppendJSON
	// escapes what arenaText below repairs, so this is exact.
	size = len(`{"ts":""`) + rfc3339NanoLen(ns) + len(`,"level":""}`) + len(lvl.String())
	for i, name := range binRecordNames {
		if len(f[i]) > 0 {
			size += len(`,"":`) + len(name) + jsonStringLen(f[i])
		}
	}
	if len(f[6]) > 2 {
		size += len(`,"attrs":`) + len(f[6])
	}
	e.Time = time.Unix(0, ns).UTC()
	e.Level = lvl
	e.Service = arenaText(arena, f[0])
	e.Message = arenaText(arena, f[1])
	e.Host = arenaText(arena, f[2])
	e.TraceID = arenaText(arena, f[3])
	e.SpanID = arenaText(arena, f[4])
	e.Tenant = arenaText(arena, f[5])
	if a := f[6]; len(a) > 2 {
		if bytes.Contains(a, replacementEscape) {
			a = arena.Bytes(unescapeReplacement(arena.scratch[:0], a))
		}
		e.Attrs = a
	}
	return size, nil
}

// replacementEscape is how AppendString writes a byte that is not UTF-8.
var replacementEscape = []byte(`\ufffd`)

// unescapeReplacement appends the attrs object a with every \ufffd escape
// written as the character itself, as the JSON record's reader gives it
// (DecodeRecord parses attrs and re-encodes them; AppendString writes
// U+FFFD unescaped). Other escapes are copied whole, so an escaped
// backslash is never taken for the start of one.
func unescapeReplacement(dst, a []byte) []byte {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		if i+6 <= len(a) && string(a[i+1:i+6]) == "ufffd" {
			dst = append(dst, "\uFFFD"...)
			i += 5
			continue
		}
		dst = append(dst, c)
		if i+1 < len(a) {
			dst = append(dst, a[i+1])
			i++
		}
	}
	return dst
}

// arenaText returns b (already in the arena) as a string, with every byte
// that is not UTF-8 replaced by U+FFFD, as AppendString does for the JSON
// record. Valid text, the common case, is not copied again.
func arenaText(arena *Arena, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if !utf8.Valid(b) {
		b = arena.Bytes(toValidUTF8(arena.scratch[:0], b))
	}
	return b2s(b)
}

// toValidUTF8 appends b to dst with each invalid byte replaced by U+FFFD
// (one replacement per byte, as encoding/json and AppendString do).
func toValidUTF8(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[i:i+size]...)
		}
		i += size
	}
	return dst
}

// binRecordNames are the JSON record's names of the binary record's text
// fields, in their order (attrs apart).
var binRecordNames = [...]string{"service", "message", "host", "trace_id", "span_id", "tenant"}

// rfc3339NanoLen is the length of the UTC time at ns Unix nanoseconds
// (0 ≤ ns: years 1970–2262, four digits) in time.RFC3339Nano, which drops
// trailing zeros of the fraction and the fraction when it is zero.
func rfc3339NanoLen(ns int64) int {
	n := len("2006-01-02T15:04:05Z")
	frac := ns % 1e9
	if frac == 0 {
		return n
	}
	digits := 9
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	return n + 1 + digits
}

// jsonStringLen is len(AppendString(nil, string(b))) without writing it.
func jsonStringLen(b []byte) int {
	n := 2 + len(b)
	for i := 0; i < len(b); {
		if i+8 <= len(b) && !needsEscape8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
			continue
		}
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n++
			default:
				n += 5 // \u00XX
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			n += 5 // one byte becomes \ufffd
		}
		i += size
	}
	return n
}
