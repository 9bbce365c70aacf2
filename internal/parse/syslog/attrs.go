package syslog

import (
	"encoding/binary"

	"github.com/wirelog/wirelog/internal/event"
)

// attrs builds the event's attribute object in place. The layout is:
//
//	{"facility":"local4","severity":"notice",
//	 "seq":"123","procid":"1234","msgid":"ID47","mnemonic":"LINK-3-UPDOWN",
//	 "sd":{"SD-ID":{"name":"value",…},…},
//	 "kv":{"key":"value",…},
//	 "parse_error":"timestamp"}
//
// Each member is present only when the message had it. Values are JSON
// strings, escaped with event.AppendString.
type attrs struct {
	b     []byte
	n     int // members written at the current nesting level
	total int // members written at every level: the record's attribute count
}

func (a *attrs) reset() {
	a.b = append(a.b[:0], '{')
	a.n = 0
	a.total = 0
}

// key writes the separator and "name": of the next member.
func (a *attrs) key(name string) {
	if len(a.b) == 0 {
		a.b = append(a.b, '{')
	}
	if a.n > 0 {
		a.b = append(a.b, ',')
	}
	a.n++
	a.total++
	a.b = appendString(a.b, name)
	a.b = append(a.b, ':')
}

// lit writes a member whose name is a constant that needs no escaping.
func (a *attrs) lit(name, v string) {
	if a.n > 0 {
		a.b = append(a.b, ',')
	}
	a.n++
	a.total++
	a.b = append(a.b, '"')
	a.b = append(a.b, name...)
	a.b = append(a.b, '"', ':')
	a.b = appendString(a.b, v)
}

// open starts a nested object member; it returns the count to hand to shut.
func (a *attrs) open(name string) int {
	a.key(name)
	a.b = append(a.b, '{')
	n := a.n
	a.n = 0
	return n
}

func (a *attrs) shut(outer int) {
	a.b = append(a.b, '}')
	a.n = outer
}

func (a *attrs) close() []byte {
	if len(a.b) == 0 {
		return a.b
	}
	return append(a.b, '}')
}

// priority writes facility and severity, precomputed for every PRI.
func (a *attrs) priority(pri int) {
	if a.n > 0 {
		a.b = append(a.b, ',')
	}
	a.n += 2
	a.total += 2
	a.b = append(a.b, priorityJSON[pri]...)
}

var priorityJSON = func() (p [192]string) {
	for i := range p {
		p[i] = `"facility":"` + facilityNames[i>>3] + `","severity":"` + severityNames[i&7] + `"`
	}
	return p
}()

// appendString is event.AppendString with a fast path: most syslog keys
// and values are printable ASCII with nothing to escape, which is checked
// eight bytes at a time and copied as is.
func appendString(dst []byte, s string) []byte {
	if needsEscape(s) {
		return event.AppendString(dst, s)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// needsEscape reports whether s has a byte JSON must escape (< 0x20, '"',
// '\\') or one that needs UTF-8 validation (>= 0x80).
func needsEscape(s string) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(unsafeBytes(s[i : i+8]))
		q := x ^ (lo * '"')
		b := x ^ (lo * '\\')
		if ((x-lo*0x20)&^x|(q-lo)&^q|(b-lo)&^b|x)&hi != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}
