// Package syslog parses syslog messages — RFC 5424 and RFC 3164 with the
// vendor quirks met in the field — into wirelog events, and splits TCP
// streams into messages (RFC 6587 octet counting and LF framing).
//
// # Ownership
//
// Parse is built for the receive hot path and allocates nothing once warm:
//
//   - e.Service, e.Host and e.Message alias line (no copy). They stay valid
//     while the bytes of line are unchanged; a caller that reuses its receive
//     buffer must encode or copy the event (strings.Clone) before it does.
//   - e.Attrs is written into the capacity e.Attrs already has (Event.Reset
//     keeps it), so one Event reused across calls reaches a steady state with
//     no allocation. The bytes are valid until the next Parse into that Event.
//
// The listeners parse into one reusable Event per socket or connection and
// encode it with event.AppendJSON at once, so nothing outlives the buffer.
//
// # Best effort
//
// Parse never loses a message. When the header cannot be understood it still
// fills e — the raw line as Message, the receive time as Time, the PRI's
// severity when there was one, and attrs.parse_error naming the reason — and
// returns the sentinel error that says what was wrong, so the caller counts a
// parse error and forwards the event anyway.
package syslog

import (
	"errors"
	"time"
	"unsafe"

	"github.com/wirelog/wirelog/internal/event"
)

// Sentinel errors returned by Parse. The event is filled in best-effort form
// whatever the error; callers match with errors.Is and use Reason for metrics.
var (
	// ErrEmpty means the message had no bytes after trimming the line end.
	ErrEmpty = errors.New("syslog: empty message")
	// ErrPRI means the message does not start with a valid <PRI> (0..191).
	ErrPRI = errors.New("syslog: missing or invalid <PRI>")
	// ErrTimestamp means an RFC 5424 TIMESTAMP is neither "-" nor RFC 3339,
	// or a timestamp says a year before 1970 or after 2200.
	ErrTimestamp = errors.New("syslog: invalid RFC 5424 timestamp")
	// ErrHeader means an RFC 5424 header ended before MSGID (a field is missing).
	ErrHeader = errors.New("syslog: incomplete RFC 5424 header")
	// ErrStructuredData means RFC 5424 STRUCTURED-DATA is neither "-" nor
	// well-formed [SD-ID param="value" …] elements.
	ErrStructuredData = errors.New("syslog: invalid RFC 5424 structured data")
)

// Reason is the short, stable name of a Parse error, for metric labels and
// attrs.parse_error: "empty", "pri", "timestamp", "header", "structured_data"
// (and "max_attributes" for ErrAttributeLimit).
func Reason(err error) string {
	switch err {
	case nil:
		return ""
	case ErrEmpty:
		return "empty"
	case ErrPRI:
		return "pri"
	case ErrTimestamp:
		return "timestamp"
	case ErrHeader:
		return "header"
	case ErrStructuredData:
		return "structured_data"
	case ErrAttributeLimit:
		return "max_attributes"
	}
	return "other"
}

// Format tells which header form Parse recognised.
type Format uint8

// Formats.
const (
	FormatUnknown Format = iota // header not understood (best-effort event)
	Format5424                  // RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
	Format3164                  // RFC 3164 ("BSD") and its vendor variants
)

// Parser turns one syslog message into an event. The zero value is ready to
// use and reads RFC 3164 timestamps, which carry no zone, as UTC. A Parser
// holds scratch space: use one per goroutine.
type Parser struct {
	// Location is the zone of RFC 3164 timestamps (they carry none); nil
	// means UTC. rsyslog and syslog-ng use the receiver's zone (time.Local).
	Location *time.Location

	scratch []byte // unescaped structured-data values
	format  Format
	nattrs  int
}

// Attributes is how many attributes (members at every level of e.Attrs)
// the last message parsed had, for the ingest limit --max-attributes.
func (p *Parser) Attributes() int { return p.nattrs }

// Format reports the header form of the last message parsed.
func (p *Parser) Format() Format { return p.format }

// Syslog severities (RFC 5424 §6.2.1) mapped onto wirelog levels:
// emerg/alert/crit are fatal, err is error, warning is warn, notice and info
// are info, debug is debug. The exact severity is kept in attrs.severity.
var severityLevel = [8]event.Level{
	event.LevelFatal, event.LevelFatal, event.LevelFatal, event.LevelError,
	event.LevelWarn, event.LevelInfo, event.LevelInfo, event.LevelDebug,
}

var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// facilityNames are the RFC 5424 §6.2.1 facility codes, named as syslog.conf
// and rsyslog name them.
var facilityNames = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// FacilityName returns the name of facility code f ("local4"), or "" when f
// is out of range.
func FacilityName(f int) string {
	if f < 0 || f >= len(facilityNames) {
		return ""
	}
	return facilityNames[f]
}

// SeverityName returns the keyword of severity s ("notice"), or "".
func SeverityName(s int) string {
	if s < 0 || s >= len(severityNames) {
		return ""
	}
	return severityNames[s]
}

// Parse fills e from line, received at recv. It returns nil, or one of the
// sentinel errors above with e holding the best-effort event (see the
// package documentation for what e's fields alias).
func (p *Parser) Parse(line []byte, recv time.Time, e *event.Event) error {
	a := attrs{b: e.Attrs[:0]}
	a.reset()
	defer func() { p.nattrs = a.total }()
	*e = event.Event{}
	p.format = FormatUnknown
	line = trimLineEnd(line)
	if len(line) == 0 {
		e.Time = recv
		e.Attrs = a.b[:0]
		return ErrEmpty
	}
	pri, n := parsePRI(line)
	if n == 0 {
		// RFC 3164 §4.3.3: a message without PRI is user.notice content.
		return p.bestEffort(line, recv, e, &a, -1, ErrPRI)
	}
	rest := line[n:]
	if v := versionLen(rest); v > 0 {
		if err := p.parse5424(rest[v:], recv, e, &a, pri); err != nil {
			return p.bestEffort(line, recv, e, &a, pri, err)
		}
		p.format = Format5424
	} else {
		p.parse3164(rest, recv, e, &a, pri)
		p.format = Format3164
	}
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		// A year before 1970 or past 2200 is a broken clock or a misread
		// field, and the log record (event.DecodeRecord) refuses it: keep
		// the line with its receive time instead, as for any bad timestamp.
		p.format = FormatUnknown
		return p.bestEffort(line, recv, e, &a, pri, ErrTimestamp)
	}
	return nil
}

// The timestamps a record may carry (event.ParseTime's bounds).
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// bestEffort rewrites e as the raw line with the receive time, keeping what
// the PRI said (pri < 0: there was none) and naming the failure in attrs.
func (p *Parser) bestEffort(line []byte, recv time.Time, e *event.Event, a *attrs, pri int, err error) error {
	*e = event.Event{Time: recv, Message: str(line)}
	a.reset()
	if pri >= 0 {
		e.Level = severityLevel[pri&7]
		a.priority(pri)
	}
	a.lit("parse_error", Reason(err))
	e.Attrs = a.close()
	return err
}

// trimLineEnd drops the trailing LF, CR and NUL bytes senders and framers
// leave behind; they are never part of a message.
func trimLineEnd(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// parsePRI reads "<N>" with N in 0..191 and returns N and the bytes read,
// or n == 0 when line does not start with a valid PRI.
func parsePRI(line []byte) (pri, n int) {
	if len(line) < 3 || line[0] != '<' {
		return 0, 0
	}
	for i := 1; i < len(line) && i <= 4; i++ {
		c := line[i]
		if c == '>' {
			if i == 1 || pri > 191 {
				return 0, 0
			}
			return pri, i + 1
		}
		if c < '0' || c > '9' {
			return 0, 0
		}
		pri = pri*10 + int(c-'0')
	}
	return 0, 0
}

// versionLen returns the length of an RFC 5424 "VERSION SP" (1-3 digits not
// starting with 0, then a space) at the start of b, or 0.
func versionLen(b []byte) int {
	i := 0
	for i < len(b) && i < 3 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || b[0] == '0' || i >= len(b) || b[i] != ' ' {
		return 0
	}
	return i + 1
}

// unsafeBytes views s as bytes; the caller must not write to them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// str views b as a string without copying; see the ownership rule.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
