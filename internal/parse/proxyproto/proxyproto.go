// Package proxyproto reads the PROXY protocol version 2 header a load
// balancer (HAProxy, AWS NLB, Envoy, nginx) puts in front of a TCP stream
// so the server learns the client's address. Specification:
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt, section 2.2.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// signature starts every v2 header.
var signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// MaxHeader bounds the bytes after the fixed 16: addresses plus TLVs. The
// specification allows up to 65535; real balancers send a few hundred at
// most, and a bound keeps a hostile peer from making us read 64 KiB.
const MaxHeader = 4096

// Errors; match with errors.Is.
var (
	// ErrNotProxy: the stream does not start with the v2 signature (a
	// client connecting directly, or a v1 text header).
	ErrNotProxy = errors.New("proxyproto: the connection does not start with a PROXY protocol v2 header")
	// ErrMalformed: the signature is there but the header is not valid.
	ErrMalformed = errors.New("proxyproto: malformed PROXY protocol v2 header")
)

// Header is what a v2 header says.
type Header struct {
	// Local is true for the LOCAL command (the balancer's own health
	// check): there is no client address, use the connection's.
	Local bool
	// Source and Dest are the client's and the original destination's
	// addresses; nil for LOCAL, UNSPEC and AF_UNIX headers.
	Source, Dest *net.TCPAddr
}

// ReadV2 reads exactly one v2 header from r (so what follows in r is the
// client's stream, untouched).
func ReadV2(r io.Reader) (Header, error) {
	var h Header
	var fixed [16]byte
	if got, err := io.ReadFull(r, fixed[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if got > 0 && (bytes.HasPrefix(signature, fixed[:got]) || bytes.HasPrefix(fixed[:got], signature)) {
				return h, fmt.Errorf("%w: truncated", ErrMalformed)
			}
			return h, ErrNotProxy
		}
		return h, err
	}
	if !bytes.Equal(fixed[:12], signature) {
		return h, ErrNotProxy
	}
	verCmd, fam := fixed[12], fixed[13]
	n := int(binary.BigEndian.Uint16(fixed[14:16]))
	if verCmd>>4 != 2 {
		return h, fmt.Errorf("%w: version %d, want 2", ErrMalformed, verCmd>>4)
	}
	if n > MaxHeader {
		return h, fmt.Errorf("%w: %d bytes of addresses and TLVs, at most %d accepted", ErrMalformed, n, MaxHeader)
	}
	rest := make([]byte, n)
	if _, err := io.ReadFull(r, rest); err != nil {
		return h, fmt.Errorf("%w: truncated after %d of %d bytes", ErrMalformed, 16, 16+n)
	}
	switch verCmd & 0x0f {
	case 0: // LOCAL
		h.Local = true
		return h, nil
	case 1: // PROXY
	default:
		return h, fmt.Errorf("%w: command %d, want LOCAL (0) or PROXY (1)", ErrMalformed, verCmd&0x0f)
	}
	switch fam >> 4 { // address family; the low nibble is the transport
	case 0: // AF_UNSPEC: keep the connection's address
		return h, nil
	case 1: // AF_INET
		if n < 12 {
			return h, fmt.Errorf("%w: IPv4 addresses need 12 bytes, got %d", ErrMalformed, n)
		}
		h.Source = &net.TCPAddr{IP: net.IP(append([]byte(nil), rest[0:4]...)), Port: int(binary.BigEndian.Uint16(rest[8:10]))}
		h.Dest = &net.TCPAddr{IP: net.IP(append([]byte(nil), rest[4:8]...)), Port: int(binary.BigEndian.Uint16(rest[10:12]))}
	case 2: // AF_INET6
		if n < 36 {
			return h, fmt.Errorf("%w: IPv6 addresses need 36 bytes, got %d", ErrMalformed, n)
		}
		h.Source = &net.TCPAddr{IP: net.IP(append([]byte(nil), rest[0:16]...)), Port: int(binary.BigEndian.Uint16(rest[32:34]))}
		h.Dest = &net.TCPAddr{IP: net.IP(append([]byte(nil), rest[16:32]...)), Port: int(binary.BigEndian.Uint16(rest[34:36]))}
	case 3: // AF_UNIX: no network address
		return h, nil
	default:
		return h, fmt.Errorf("%w: address family %d", ErrMalformed, fam>>4)
	}
	return h, nil
}

// AppendV2 appends a v2 PROXY header for a TCP connection from src to dst
// (what a balancer sends; tests and load generators use it).
func AppendV2(b []byte, src, dst *net.TCPAddr) []byte {
	b = append(b, signature...)
	b = append(b, 0x21) // version 2, PROXY
	s4, d4 := src.IP.To4(), dst.IP.To4()
	if s4 != nil && d4 != nil {
		b = append(b, 0x11, 0, 12)
		b = append(b, s4...)
		b = append(b, d4...)
	} else {
		b = append(b, 0x21, 0, 36)
		b = append(b, src.IP.To16()...)
		b = append(b, dst.IP.To16()...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(src.Port))
	return binary.BigEndian.AppendUint16(b, uint16(dst.Port))
}
