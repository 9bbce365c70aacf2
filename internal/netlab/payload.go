package netlab

import (
	"errors"
	"time"
)

// The payload is an RFC 5424 syslog line, so any syslog receiver can take
// it, with the sequence number and the send time at fixed offsets in hex:
//
//	<14>1 - nl wl - - - S<16 hex seq>T<16 hex ns since epoch> ....
//
// The sequence carries the step number in its top 16 bits, so a receiver
// can tell a late packet of an earlier step from one of the current step.
const (
	payloadHead = "<14>1 - nl wl - - - "
	seqOff      = len(payloadHead) + 1 // after 'S'
	tsOff       = seqOff + 16 + 1      // after 'T'
	// MinPayload is the smallest payload that holds the header, sequence
	// and timestamp.
	MinPayload = tsOff + 16 + 1
	// MaxPayload keeps one datagram in one 1500-byte frame (no IP
	// fragmentation, which would measure reassembly instead).
	MaxPayload = 1500 - 20 - 8
	stepShift  = 48
)

// epoch is the zero of the payload timestamps: sender and receiver run in
// one process, so both read the same monotonic clock.
var epoch = time.Now()

func nowNS() uint64 { return uint64(time.Since(epoch)) }

const hexDigits = "0123456789abcdef"

// putHex16 writes v as 16 lower-case hex digits.
func putHex16(b []byte, v uint64) {
	_ = b[15]
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

var errNotLabPayload = errors.New("netlab: not a lab payload")

// parseHex16 reads 16 hex digits.
func parseHex16(b []byte) (uint64, bool) {
	if len(b) < 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b[:16] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// fillPayload lays out a payload of size bytes with zero sequence and time.
func fillPayload(b []byte) {
	copy(b, payloadHead)
	b[seqOff-1] = 'S'
	b[tsOff-1] = 'T'
	for i := seqOff; i < seqOff+16; i++ {
		b[i] = '0'
	}
	for i := tsOff; i < tsOff+16; i++ {
		b[i] = '0'
	}
	for i := tsOff + 16; i < len(b); i++ {
		b[i] = '.'
	}
	b[tsOff+16] = ' '
}

// ParsePayload returns the sequence and send time of a lab payload.
func ParsePayload(b []byte) (seq, sentNS uint64, err error) {
	if len(b) >= MinPayload && b[seqOff-1] == 'S' && b[tsOff-1] == 'T' {
		seq, ok1 := parseHex16(b[seqOff:])
		ts, ok2 := parseHex16(b[tsOff:])
		if ok1 && ok2 {
			return seq, ts, nil
		}
	}
	return 0, 0, errNotLabPayload
}
