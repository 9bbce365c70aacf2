package syslog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/wirelog/wirelog/internal/event"
)

// Raw syslog records.
//
// The UDP listener can put a datagram into the durable log as it arrived,
// with its sender and receive time in front, instead of parsing it and
// encoding the event as JSON on the receive path: parsing then happens once,
// in the processor, which would otherwise decode the JSON record anyway. The
// event the processor stores is the one the JSON path would have stored
// (TestRecordMatchesJSON holds the two to that).
//
// A JSON record starts with '{'; a raw syslog record starts with a NUL, so
// the processor tells them apart by the first byte and old logs stay
// readable. Layout, version 1 (integers big-endian):
//
//	off size field
//	0   1    0x00
//	1   1    'S'
//	2   1    version (1)
//	3   1    flags: bit 0 = the datagram was cut to the size limit
//	4   8    receive time, Unix nanoseconds
//	12  1    sender family: 0 none, 4 (then 4 address bytes), 6 (then 16)
//	…   2    sender port (absent when the family is 0)
//	…   uvarint  --max-attributes in force at ingest (0 = unbounded)
//	…   uvarint  length of the zone name of RFC 3164 timestamps, then the name
//	             (time.Location.String(): "UTC", "Local", "Europe/Berlin")
//	…   rest     the message, as received
const (
	recordVersion = 1
	// RecordFlagTruncated marks a datagram cut to the size limit.
	RecordFlagTruncated = 1
)

// RecordMeta is what a raw record carries besides the message.
type RecordMeta struct {
	Recv          time.Time
	Peer          netip.AddrPort // the zero value when unknown
	MaxAttributes int
	Location      *time.Location // nil = UTC
	Flags         byte
}

// IsRecord reports whether b is a raw syslog record (not a JSON one).
func IsRecord(b []byte) bool { return len(b) >= 3 && b[0] == 0 && b[1] == 'S' }

// AppendRecord appends the raw record of msg to dst.
func AppendRecord(dst, msg []byte, m *RecordMeta) []byte {
	dst = append(dst, 0, 'S', recordVersion, m.Flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Recv.UnixNano()))
	switch a := m.Peer.Addr().Unmap(); {
	case a.Is4():
		b := a.As4()
		dst = append(dst, 4)
		dst = append(dst, b[:]...)
		dst = binary.BigEndian.AppendUint16(dst, m.Peer.Port())
	case a.Is6():
		b := a.As16()
		dst = append(dst, 6)
		dst = append(dst, b[:]...)
		dst = binary.BigEndian.AppendUint16(dst, m.Peer.Port())
	default:
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(max(m.MaxAttributes, 0)))
	if m.Location == nil || m.Location == time.UTC {
		dst = append(dst, 0)
	} else {
		name := m.Location.String()
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
	}
	return append(dst, msg...)
}

// ErrAttributeLimit is Decode's parseErr for a message whose attributes
// were dropped for --max-attributes (Reason: "max_attributes").
var ErrAttributeLimit = errors.New("syslog: more attributes than --max-attributes; structured data dropped")

// ErrRecord means a record marked as raw syslog is not one (a damaged or
// foreign record).
var ErrRecord = errors.New("syslog: malformed raw syslog record")

// RecordDecoder turns raw records into events. Use one per goroutine.
type RecordDecoder struct {
	p        Parser
	zoneName string
	zone     *time.Location
	ev       event.Event
	limit    []byte
	peer     []byte
	attrs    []byte
	scratch  []byte
}

// Decode fills e from the raw record data with the event the ingest's JSON
// path would have stored, its strings copied into arena (data may be reused
// once Decode returns). parseErr is the syslog parse error (the event is
// then the best-effort one, as at ingest, or ErrAttributeLimit, and the
// caller counts it by Reason); err means data is not a raw record at all.
func (d *RecordDecoder) Decode(data []byte, arena *event.Arena, e *event.Event) (parseErr, err error) {
	m, msg, err := d.header(data)
	if err != nil {
		return nil, err
	}
	d.p.Location = m.Location
	d.ev.Reset()
	parseErr = d.p.Parse(msg, m.Recv, &d.ev)
	// ErrEmpty: never produced by the listener (it counts and drops empty
	// datagrams), but a record holding one still decodes as ingest would.
	if m.MaxAttributes > 0 && d.p.Attributes() > m.MaxAttributes {
		d.limit = AppendLimitError(d.limit[:0], d.p.Attributes(), m.MaxAttributes)
		d.ev.Attrs = d.limit
		if parseErr == nil {
			parseErr = ErrAttributeLimit
		}
	}
	if m.Peer.Addr().IsValid() {
		d.peer = event.AppendClientAddr(d.peer[:0], m.Peer)
		d.attrs = event.WithMembers(d.attrs, d.ev.Attrs, d.peer)
		d.ev.Attrs = d.attrs
	}
	e.Reset()
	e.Time = d.ev.Time.UTC()
	e.Service = d.text(arena, d.ev.Service)
	e.Level = d.ev.Level
	e.Message = d.text(arena, d.ev.Message)
	e.Host = d.text(arena, d.ev.Host)
	e.TraceID = d.text(arena, d.ev.TraceID)
	e.SpanID = d.text(arena, d.ev.SpanID)
	e.Tenant = d.text(arena, d.ev.Tenant)
	if len(d.ev.Attrs) > 2 { // the JSON record leaves "{}" out
		e.Attrs = arena.Bytes(d.ev.Attrs)
	}
	return parseErr, nil
}

// text copies s into arena with every byte that is not valid UTF-8
// replaced by U+FFFD, as event.AppendString does for the JSON record.
func (d *RecordDecoder) text(arena *event.Arena, s string) string {
	if utf8.ValidString(s) {
		return arena.String(unsafeBytes(s))
	}
	b := d.scratch[:0]
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	d.scratch = b
	return arena.String(b)
}

// header splits a raw record into its metadata and the message.
func (d *RecordDecoder) header(b []byte) (RecordMeta, []byte, error) {
	var m RecordMeta
	if !IsRecord(b) || len(b) < 13 {
		return m, nil, fmt.Errorf("%w: %d bytes", ErrRecord, len(b))
	}
	if b[2] != recordVersion {
		return m, nil, fmt.Errorf("%w: version %d, this wirelog reads %d (upgrade the processor)", ErrRecord, b[2], recordVersion)
	}
	m.Flags = b[3]
	m.Recv = time.Unix(0, int64(binary.BigEndian.Uint64(b[4:12])))
	rest := b[13:]
	switch b[12] {
	case 0:
	case 4, 6:
		n := 4
		if b[12] == 6 {
			n = 16
		}
		if len(rest) < n+2 {
			return m, nil, fmt.Errorf("%w: sender address cut short", ErrRecord)
		}
		a, _ := netip.AddrFromSlice(rest[:n])
		m.Peer = netip.AddrPortFrom(a, binary.BigEndian.Uint16(rest[n:n+2]))
		rest = rest[n+2:]
	default:
		return m, nil, fmt.Errorf("%w: sender family %d", ErrRecord, b[12])
	}
	ma, k := binary.Uvarint(rest)
	if k <= 0 || ma > 1<<31 {
		return m, nil, fmt.Errorf("%w: attribute limit", ErrRecord)
	}
	m.MaxAttributes, rest = int(ma), rest[k:]
	zl, k := binary.Uvarint(rest)
	if k <= 0 || zl > uint64(len(rest)-k) || zl > 255 {
		return m, nil, fmt.Errorf("%w: zone name", ErrRecord)
	}
	zone := rest[k : k+int(zl)]
	rest = rest[k+int(zl):]
	switch {
	case len(zone) == 0:
		m.Location = time.UTC
	case string(zone) == d.zoneName:
		m.Location = d.zone
	default:
		loc, err := loadZone(string(zone))
		if err != nil {
			return m, nil, fmt.Errorf("%w: zone %q of RFC 3164 timestamps: %v (install tzdata on the processor's host)", ErrRecord, zone, err)
		}
		d.zoneName, d.zone = string(zone), loc
		m.Location = loc
	}
	return m, rest, nil
}

// loadZone resolves a Location's name as time.Location.String gave it.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return time.Local, nil
	}
	return time.LoadLocation(name)
}

// AppendLimitError appends the attrs object that replaces the structured
// data of a message with n attributes, over the limit max (--max-attributes).
func AppendLimitError(dst []byte, n, max int) []byte {
	return fmt.Appendf(dst, `{"limit_error":"message has %d attributes, over the limit of %d (--max-attributes); structured data dropped"}`, n, max)
}

// IsEmpty reports whether Parse would return ErrEmpty for line.
func IsEmpty(line []byte) bool { return len(trimLineEnd(line)) == 0 }
