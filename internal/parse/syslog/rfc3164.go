package syslog

import (
	"bytes"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

// parse3164 reads what follows "<PRI>" in a BSD-style message. RFC 3164
// (§4.3) makes every part after the PRI optional and vendors take every
// liberty, so nothing here fails: what is not recognised stays in Message.
//
//	[SEQ ": "] [HOST ": "] [TIMESTAMP[":"] SP] [HOSTNAME SP] [TAG["[" PID "]"]":" SP] MSG
//
// SEQ and "HOST: " before the timestamp are Cisco IOS ("service
// sequence-numbers", "logging origin-id"); see parseStamp for the timestamp
// forms. A Cisco "%FAC-SEV-MNEMONIC:" in the tag's place names the service,
// and a key=value body fills attrs.kv.
func (p *Parser) parse3164(b []byte, recv time.Time, e *event.Event, a *attrs, pri int) {
	e.Level = severityLevel[pri&7]
	a.priority(pri)

	var st stamp
	var seq, host []byte
	if len(b) >= 2 && b[0] == ':' && b[1] == ' ' { // NX-OS "<189>: 2024 Mar …"
		b = b[2:]
	}
	if n := seqLen(b); n > 0 {
		seq, b = b[:n], b[n+2:]
	}
	n := parseStamp(b, &st)
	if n == 0 && seq != nil {
		if h := hostnameLen(b); h > 0 && h+1 < len(b) && b[h] == ':' && b[h+1] == ' ' {
			if m := parseStamp(b[h+2:], &st); m > 0 {
				host, n = b[:h], h+2+m
			}
		}
	}
	hasTime := n > 0
	if hasTime {
		e.Time = st.resolve(recv, p.Location)
		b = skipSpaces(b[n:])
	} else {
		e.Time = recv
	}

	// HOSTNAME: after a timestamp, a host-like word followed by a space.
	// Without a timestamp, only when a tag follows it (else it is text).
	if host == nil {
		if h := hostnameLen(b); h > 0 && h < len(b) && b[h] == ' ' {
			if hasTime || tagLen(b[h+1:]) > 0 {
				host, b = b[:h], skipSpaces(b[h+1:])
			}
		}
	}
	if len(b) >= 2 && b[0] == ':' && b[1] == ' ' { // ASA "fw01 : %ASA-…"
		b = b[2:]
	}
	if host != nil { // F5 BIG-IP: "host notice mcpd[6789]: …"
		if n := severityWordLen(b); n > 0 && tagLen(b[n+1:]) > 0 {
			b = b[n+1:]
		}
	}
	// A relay's header before Cisco's own: "host 123: *Mar  1 …: %…".
	if seq == nil {
		if n := seqLen(b); n > 0 {
			seq, b = b[:n], b[n+2:]
			var inner stamp
			if m := parseStamp(b, &inner); m > 0 {
				if !hasTime {
					e.Time = inner.resolve(recv, p.Location)
					hasTime = true
				}
				b = skipSpaces(b[m:])
			}
		}
	}
	e.Host = str(host)
	if seq != nil {
		a.lit("seq", str(seq))
	}

	// TAG or Cisco mnemonic
	if len(b) > 0 && b[0] == '%' {
		if fac, mn, rest, ok := mnemonic(b); ok {
			e.Service = str(fac)
			a.lit("mnemonic", str(mn))
			b = rest
		}
	} else if n := tagLen(b); n > 0 {
		tag := b[:n]
		if i := bytes.IndexByte(tag, '['); i > 0 {
			a.lit("procid", str(tag[i+1:bytes.IndexByte(tag, ']')]))
			tag = tag[:i]
		}
		e.Service = str(tag)
		b = b[n:]
		if len(b) > 0 && b[0] == ':' {
			b = b[1:]
		}
		if len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
	}
	e.Message = str(b)
	p.keyValues(b, e, a, hasTime)
	e.Attrs = a.close()
}

// seqLen returns the length of a Cisco sequence number "123: " at the start
// of b (the digits only), or 0.
func seqLen(b []byte) int {
	i := 0
	for i < len(b) && i < 12 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i+1 >= len(b) || b[i] != ':' || b[i+1] != ' ' {
		return 0
	}
	return i
}

func skipSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// hostnameLen returns the length of a host name or address at the start of
// b: letters, digits, '.', '-', '_' and ':' (IPv6), not ending in ':'.
func hostnameLen(b []byte) int {
	i := 0
	for i < len(b) && i < 255 {
		c := b[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':' {
			i++
			continue
		}
		break
	}
	for i > 0 && b[i-1] == ':' {
		i--
	}
	return i
}

// tagLen returns the length of "TAG:", "TAG[PID]:" or "TAG[PID]" at the
// start of b (including the brackets, excluding the colon), or 0. A tag is
// up to 64 bytes with no space, ':', '[', ']' or '='.
func tagLen(b []byte) int {
	i := 0
	for i < len(b) && i < 64 {
		c := b[i]
		if c <= ' ' || c == ':' || c == '[' || c == ']' || c == '=' || c == 0x7f {
			break
		}
		i++
	}
	if i == 0 || i >= len(b) {
		return 0
	}
	switch b[i] {
	case ':':
		return i
	case '[':
		j := bytes.IndexByte(b[i:min(len(b), i+34)], ']')
		if j < 2 {
			return 0
		}
		k := i + j + 1
		if k == len(b) || b[k] == ':' || b[k] == ' ' {
			return k
		}
	}
	return 0
}

// mnemonic reads a Cisco "%FAC-SEV-MNEMONIC: " (IOS, NX-OS, ASA; IOS XR
// adds a space before the colon) and returns the facility, the mnemonic
// without '%', and the message after it.
func mnemonic(b []byte) (fac, mn, rest []byte, ok bool) {
	i, dashes, firstDash := 1, 0, 0
	for i < len(b) && i < 96 {
		c := b[i]
		if c == '-' {
			if dashes == 0 {
				firstDash = i
			}
			dashes++
		} else if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			break
		}
		i++
	}
	if dashes < 2 || firstDash < 2 || i >= len(b) {
		return nil, nil, b, false
	}
	j := i
	if b[j] == ' ' && j+1 < len(b) && b[j+1] == ':' {
		j++
	}
	if b[j] != ':' {
		return nil, nil, b, false
	}
	return b[1:firstDash], b[1:i], skipSpaces(b[j+1:]), true
}

// keyValues turns a body of key=value pairs (FortiGate, Sophos, audit,
// many appliances) into attrs.kv. Values may be "quoted" with \" escapes.
// It applies only when the body starts with key=. FortiGate's devname fills
// an empty Host, and its date=/time=(/tz=) a missing timestamp.
func (p *Parser) keyValues(b []byte, e *event.Event, a *attrs, hasTime bool) {
	if k := kvKeyLen(b); k == 0 || k >= len(b) || b[k] != '=' {
		return
	}
	var date, clock, tz []byte
	outer := a.open("kv")
	for len(b) > 0 {
		b = skipSpaces(b)
		k := kvKeyLen(b)
		if k == 0 || k >= len(b) || b[k] != '=' {
			// Not a pair: skip the word.
			i := bytes.IndexByte(b, ' ')
			if i < 0 {
				break
			}
			b = b[i:]
			continue
		}
		key := b[:k]
		b = b[k+1:]
		var v []byte
		escaped := false
		if len(b) > 0 && b[0] == '"' {
			i := 1
			for ; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					escaped = true
					i++
				}
			}
			v = b[1:min(i, len(b))]
			b = b[min(i+1, len(b)):]
		} else {
			i := bytes.IndexByte(b, ' ')
			if i < 0 {
				i = len(b)
			}
			v, b = b[:i], b[i:]
		}
		a.key(str(key))
		if escaped {
			a.b = appendString(a.b, str(p.unescape(v)))
			continue
		}
		a.b = appendString(a.b, str(v))
		switch string(key) {
		case "devname":
			if e.Host == "" {
				e.Host = str(v)
			}
		case "date":
			date = v
		case "time":
			clock = v
		case "tz":
			tz = v
		}
	}
	a.shut(outer)
	if !hasTime && date != nil && clock != nil {
		if t, ok := dateTime(date, clock, tz, p.Location); ok {
			e.Time = t
		}
	}
}

// kvKeyLen returns the length of a key ([A-Za-z0-9_.-]) at the start of b.
func kvKeyLen(b []byte) int {
	i := 0
	for i < len(b) && i < 128 {
		c := b[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			i++
			continue
		}
		break
	}
	return i
}

// dateTime reads FortiGate's date=2024-01-05 time=10:15:32 [tz="+0100"].
func dateTime(date, clock, tz []byte, loc *time.Location) (time.Time, bool) {
	var c civil
	y, ok1 := digits(date, 0, 4)
	mo, ok2 := digits(date, 5, 2)
	d, ok3 := digits(date, 8, 2)
	if !ok1 || !ok2 || !ok3 || len(date) != 10 || mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) {
		return time.Time{}, false
	}
	c.year, c.month, c.day = y, mo, d
	if len(clock) != 8 {
		return time.Time{}, false
	}
	if _, ok := clockTime(clock, 0, &c); !ok {
		return time.Time{}, false
	}
	if len(tz) == 5 && (tz[0] == '+' || tz[0] == '-') {
		oh, ok1 := digits(tz, 1, 2)
		om, ok2 := digits(tz, 3, 2)
		if ok1 && ok2 && oh <= 23 && om <= 59 {
			off := oh*3600 + om*60
			if tz[0] == '-' {
				off = -off
			}
			return c.withOffset(off), true
		}
	}
	return c.in(loc), true
}

// severityWordLen returns the length of a severity keyword followed by a
// space at the start of b (F5 BIG-IP writes one after the host), or 0.
func severityWordLen(b []byte) int {
	for _, w := range severityNames {
		if len(b) > len(w) && b[len(w)] == ' ' && string(b[:len(w)]) == w {
			return len(w)
		}
	}
	return 0
}
