package event

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the log-record form of e to dst: one JSON object with
// the fields ts (RFC 3339 with nanoseconds, UTC), service, level, message,
// host, trace_id, span_id, tenant (each left out when empty) and attrs (the
// attribute object, left out when empty). This is the value of every record in
// the embedded log and in Kafka, so any consumer can read it.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"ts":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = appendField(dst, "service", e.Service)
	dst = append(dst, `,"level":"`...)
	dst = append(dst, e.Level.String()...)
	dst = append(dst, '"')
	dst = appendField(dst, "message", e.Message)
	dst = appendField(dst, "host", e.Host)
	dst = appendField(dst, "trace_id", e.TraceID)
	dst = appendField(dst, "span_id", e.SpanID)
	dst = appendField(dst, "tenant", e.Tenant)
	if len(e.Attrs) > 2 { // "{}" carries nothing
		dst = append(dst, `,"attrs":`...)
		dst = append(dst, e.Attrs...)
	}
	return append(dst, '}')
}

func appendField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return AppendString(dst, v)
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does, so the output is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Most text needs no escaping: skip it eight bytes at a time.
		if i+8 <= len(s) && !needsEscape8(binary.LittleEndian.Uint64([]byte(s[i:i+8]))) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// needsEscape8 reports whether any of the eight bytes in x is a control
// character, '"', '\\' or non-ASCII (which needs UTF-8 validation), with the
// classic has-less-than and has-zero-byte bit tricks.
func needsEscape8(x uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	lt := (x - 0x20*ones) & ^x & high // a byte < 0x20
	q := x ^ ('"' * ones)
	hq := (q - ones) & ^q & high // a '"'
	b := x ^ ('\\' * ones)
	hb := (b - ones) & ^b & high // a '\\'
	return lt|hq|hb|(x&high) != 0
}

// appendInt is strconv.AppendInt, named for the callers' readability.
func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }
