package syslog

import (
	"bytes"
	"errors"
	"io"
)

// Framing is how messages are delimited on a syslog TCP stream (RFC 6587).
type Framing uint8

// Framings.
const (
	FramingUnknown       Framing = iota // nothing read yet
	FramingOctetCounting                // "MSG-LEN SP SYSLOG-MSG" (RFC 6587 §3.4.1, RFC 5425)
	FramingLF                           // messages end with LF (RFC 6587 §3.4.2, "non-transparent")
)

func (f Framing) String() string {
	switch f {
	case FramingOctetCounting:
		return "octet-counting"
	case FramingLF:
		return "lf"
	}
	return "unknown"
}

// maxLenDigits bounds MSG-LEN: ten digits already exceed any sane message.
const maxLenDigits = 10

// initialBuffer is a connection's first buffer; it doubles up to the
// maximum message size only for a connection that sends long messages, so
// ten thousand idle or chatty connections do not each hold the maximum.
const initialBuffer = 16 << 10

// Framer splits one TCP stream into syslog messages. The framing is chosen
// from the first byte of the stream, as rsyslog and syslog-ng do: a digit
// means octet counting, anything else ('<') LF. If an octet-counting header
// is malformed later (no digits, no space after them), the framer counts a
// framing error and reads the rest of the stream as LF-delimited, so the
// bytes still arrive as messages instead of being dropped.
//
// Messages longer than the maximum are cut to it and reported as truncated;
// the rest of that message is read and discarded, and the stream continues
// with the next message.
type Framer struct {
	r          io.Reader
	buf        []byte
	start, end int
	max        int
	limit      int // largest buffer: a maximum-size message and its header
	mode       Framing
	err        error // sticky read error, returned once the buffer is drained
	skip       int   // octet counting: bytes of an oversize message left to discard
	discarding bool  // LF: discarding the rest of an oversize line
	framingErr uint64
}

// NewFramer reads messages of at most maxMessage bytes from r.
func NewFramer(r io.Reader, maxMessage int) *Framer {
	if maxMessage < 1 {
		maxMessage = 1
	}
	limit := maxMessage + maxLenDigits + 2
	return &Framer{r: r, buf: make([]byte, min(limit, initialBuffer)), max: maxMessage, limit: limit}
}

// Mode reports the framing in use (FramingUnknown before the first byte).
func (f *Framer) Mode() Framing { return f.mode }

// FramingErrors counts malformed octet-counting headers (each switches the
// stream to LF framing).
func (f *Framer) FramingErrors() uint64 { return f.framingErr }

// Buffered reports how many bytes are read but not yet returned.
func (f *Framer) Buffered() int { return f.end - f.start }

// Next returns the next message without its framing, valid until the next
// call. truncated reports a message cut to the maximum size, or one the
// stream ended in the middle of. At the end of the stream Next returns
// io.EOF; a read error (a deadline, a reset) is returned once every byte
// read before it has been delivered.
func (f *Framer) Next() (msg []byte, truncated bool, err error) {
	for {
		if f.mode == FramingUnknown {
			if f.start == f.end {
				if err := f.fill(); err != nil {
					return nil, false, err
				}
				continue
			}
			if c := f.buf[f.start]; c >= '0' && c <= '9' {
				f.mode = FramingOctetCounting
			} else {
				f.mode = FramingLF
			}
		}
		if f.mode == FramingOctetCounting {
			msg, truncated, err, done := f.nextOctet()
			if done {
				return msg, truncated, err
			}
			continue
		}
		msg, truncated, err, done := f.nextLF()
		if done {
			return msg, truncated, err
		}
	}
}

// nextOctet reads one octet-counted message; done=false means "call again"
// (more bytes were read, or the mode changed).
func (f *Framer) nextOctet() (msg []byte, truncated bool, err error, done bool) {
	if f.skip > 0 {
		n := min(f.skip, f.end-f.start)
		f.start += n
		f.skip -= n
		if f.skip > 0 {
			if err := f.fill(); err != nil {
				return nil, false, err, true
			}
		}
		return nil, false, nil, false
	}
	if f.start == f.end {
		if err := f.fill(); err != nil {
			return nil, false, err, true
		}
		return nil, false, nil, false
	}
	b := f.buf[f.start:f.end]
	n, i := 0, 0
	for i < len(b) && i < maxLenDigits && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i == len(b) && i < maxLenDigits { // header not complete yet
		if err := f.fill(); err != nil {
			return f.partial(err)
		}
		return nil, false, nil, false
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		// Not a frame header: resynchronise on LF framing from here.
		f.framingErr++
		f.mode = FramingLF
		return nil, false, nil, false
	}
	hdr := i + 1
	want := n
	if want > f.max {
		want = f.max
	}
	if len(b) < hdr+want {
		if err := f.fill(); err != nil {
			f.start += hdr
			return f.partial(err)
		}
		return nil, false, nil, false
	}
	msg = b[hdr : hdr+want]
	f.start += hdr + want
	f.skip = n - want
	return msg, n > want, nil, true
}

// partial delivers the bytes left when the stream ends inside a frame, so
// they are not lost, and keeps err for the next call.
func (f *Framer) partial(err error) ([]byte, bool, error, bool) {
	if f.start == f.end {
		return nil, false, err, true
	}
	msg := f.buf[f.start:min(f.end, f.start+f.max)]
	f.start = f.end
	return msg, true, nil, true
}

func (f *Framer) nextLF() (msg []byte, truncated bool, err error, done bool) {
	b := f.buf[f.start:f.end]
	if f.discarding {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			f.start += i + 1
			f.discarding = false
			return nil, false, nil, false
		}
		f.start = f.end
		if err := f.fill(); err != nil {
			return nil, false, err, true
		}
		return nil, false, nil, false
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		f.start += i + 1
		if i > f.max {
			return b[:f.max], true, nil, true
		}
		if i == 0 || i == 1 && b[0] == '\r' { // blank line: a keepalive, not a message
			return nil, false, nil, false
		}
		return b[:i], false, nil, true
	}
	if len(b) >= f.max {
		f.start += f.max
		f.discarding = true
		return b[:f.max], true, nil, true
	}
	if err := f.fill(); err != nil {
		if f.start == f.end {
			return nil, false, err, true
		}
		// The stream ended without a final LF: that last line is a message.
		msg = f.buf[f.start:f.end]
		f.start = f.end
		return msg, false, nil, true
	}
	return nil, false, nil, false
}

// errNoProgress guards against readers that return 0, nil forever.
var errNoProgress = errors.New("syslog framer: reader returned no data and no error 100 times")

// fill reads more bytes, first making room when the buffer is full: it
// moves unread bytes to the front, or grows the buffer when they fill it.
// It returns the sticky read error, if any.
func (f *Framer) fill() error {
	if f.err != nil {
		return f.err
	}
	if f.start == f.end {
		f.start, f.end = 0, 0
	} else if f.end == len(f.buf) {
		if f.start == 0 && len(f.buf) < f.limit {
			nb := make([]byte, min(2*len(f.buf), f.limit))
			f.end = copy(nb, f.buf[:f.end])
			f.buf = nb
		} else {
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		}
	}
	for tries := 0; tries < 100; tries++ {
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		if err != nil {
			f.err = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	f.err = errNoProgress
	return f.err
}
