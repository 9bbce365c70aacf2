package event

import (
	"net/netip"
	"strconv"
)

// Attribute names of the sender's address, as OpenTelemetry's semantic
// conventions name them.
const (
	AttrClientAddress = "client.address"
	AttrClientPort    = "client.port"
)

// AppendClientAddr appends the JSON members "client.address":"…" and,
// when the port is known (not 0), "client.port":N, for ap.
func AppendClientAddr(b []byte, ap netip.AddrPort) []byte {
	if !ap.Addr().IsValid() {
		return b
	}
	b = append(b, `"`+AttrClientAddress+`":"`...)
	b = ap.Addr().Unmap().AppendTo(b)
	b = append(b, '"')
	if ap.Port() != 0 {
		b = append(b, `,"`+AttrClientPort+`":`...)
		b = strconv.AppendUint(b, uint64(ap.Port()), 10)
	}
	return b
}

// WithMembers returns the attrs object (JSON, or empty) with the JSON
// members appended, built in buf (reused by the caller).
func WithMembers(buf, attrs, members []byte) []byte {
	buf = buf[:0]
	if len(attrs) < 2 || attrs[len(attrs)-1] != '}' {
		buf = append(buf, '{')
	} else {
		buf = append(buf, attrs[:len(attrs)-1]...)
		if len(attrs) > 2 {
			buf = append(buf, ',')
		}
	}
	buf = append(buf, members...)
	return append(buf, '}')
}
