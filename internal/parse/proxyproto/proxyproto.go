// Package proxyproto reads the PROXY protocol header a load balancer
// (HAProxy, AWS NLB, Envoy, nginx, F5) puts in front of a TCP stream so the
// server learns the client's address: version 1 (a text line) and version 2
// (binary). Specification:
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt, sections 2.1
// and 2.2.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
)

// signature starts every v2 header.
var signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// MaxHeader bounds the bytes after the fixed 16: addresses plus TLVs. The
// specification allows up to 65535; real balancers send a few hundred at
// most, and a bound keeps a hostile peer from making us read 64 KiB.
const MaxHeader = 4096

// Errors; match with errors.Is.
var (
	// ErrNotProxy: the stream does not start with the header looked for
	// (a client connecting directly, not through the balancer).
	ErrNotProxy = errors.New("proxyproto: the connection does not start with a PROXY protocol header")
	// ErrMalformed: the signature is there but the header is not valid.
	ErrMalformed = errors.New("proxyproto: malformed PROXY protocol header")
)

// Header is what a header says.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
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
	var fixed [16]byte
	return readV2(r, fixed[:0])
}

// readV2 reads a v2 header whose first len(have) bytes were read already.
func readV2(r io.Reader, have []byte) (Header, error) {
	h := Header{Version: 2}
	var fixed [16]byte
	copy(fixed[:], have)
	if got, err := io.ReadFull(r, fixed[len(have):]); err != nil {
		got += len(have)
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

// v1Max is the longest v1 line, CRLF included (specification, 2.1).
const v1Max = 107

// Read reads one header of either version from r, told apart by its first
// bytes, and nothing after it (what follows in r is the client's stream).
func Read(r io.Reader) (Header, error) {
	var start [5]byte // "PROXY" or the first five bytes of the v2 signature
	if got, err := io.ReadFull(r, start[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if got > 0 && (bytes.HasPrefix([]byte("PROXY"), start[:got]) || bytes.HasPrefix(signature, start[:got])) {
				return Header{}, fmt.Errorf("%w: truncated", ErrMalformed)
			}
			return Header{}, ErrNotProxy
		}
		return Header{}, err
	}
	switch {
	case string(start[:]) == "PROXY":
		return readV1(r, start[:])
	case bytes.Equal(start[:], signature[:5]):
		return readV2(r, start[:])
	}
	return Header{}, ErrNotProxy
}

// ReadV1 reads exactly one v1 (text) header from r.
func ReadV1(r io.Reader) (Header, error) { return readV1(r, nil) }

// readV1 reads the v1 line a byte at a time, so not one byte of the
// client's stream is consumed with it (once per connection: ~100 reads).
func readV1(r io.Reader, have []byte) (Header, error) {
	var buf [v1Max]byte
	line := append(buf[:0], have...)
	var one [1]byte
	for len(line) == 0 || line[len(line)-1] != '\n' {
		if len(line) == v1Max {
			return Header{}, fmt.Errorf("%w: v1 line longer than %d bytes", ErrMalformed, v1Max)
		}
		if _, err := io.ReadFull(r, one[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if len(line) == 0 {
					return Header{}, ErrNotProxy
				}
				return Header{}, fmt.Errorf("%w: v1 line cut short", ErrMalformed)
			}
			return Header{}, err
		}
		line = append(line, one[0])
	}
	return ParseV1(line)
}

// ParseV1 parses one whole v1 line, "PROXY TCP4 192.0.2.1 198.51.100.1
// 56324 443\r\n" (TCP4, TCP6 or UNKNOWN), CRLF included.
func ParseV1(line []byte) (Header, error) {
	h := Header{Version: 1}
	if !bytes.HasPrefix(line, []byte("PROXY ")) {
		return h, ErrNotProxy
	}
	if len(line) > v1Max {
		return h, fmt.Errorf("%w: v1 line longer than %d bytes", ErrMalformed, v1Max)
	}
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return h, fmt.Errorf("%w: v1 line does not end in CRLF", ErrMalformed)
	}
	f := bytes.Split(body, []byte(" "))
	switch string(f[1]) {
	case "UNKNOWN": // the balancer does not know: keep the connection's address; the rest is ignored
		return h, nil
	case "TCP4", "TCP6":
	default:
		return h, fmt.Errorf("%w: v1 protocol %q, want TCP4, TCP6 or UNKNOWN", ErrMalformed, f[1])
	}
	if len(f) != 6 {
		return h, fmt.Errorf("%w: v1 line has %d fields, want PROXY, protocol, two addresses and two ports", ErrMalformed, len(f))
	}
	v6 := string(f[1]) == "TCP6"
	var addrs [2]*net.TCPAddr
	for i := range addrs {
		a, err := netip.ParseAddr(string(f[2+i]))
		if err != nil || a.Zone() != "" || a.Is6() != v6 {
			return h, fmt.Errorf("%w: v1 %s address %q", ErrMalformed, f[1], f[2+i])
		}
		p, ok := port(f[4+i])
		if !ok {
			return h, fmt.Errorf("%w: v1 port %q", ErrMalformed, f[4+i])
		}
		addrs[i] = net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, p))
	}
	h.Source, h.Dest = addrs[0], addrs[1]
	return h, nil
}

// port reads a decimal port, 0..65535, without sign or leading zeros.
func port(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return uint16(n), n <= 65535
}

// AppendV1 appends a v1 line for a TCP connection from src to dst (TCP4
// when both are IPv4, else TCP6).
func AppendV1(b []byte, src, dst *net.TCPAddr) []byte {
	s, d := src.AddrPort(), dst.AddrPort()
	proto := "TCP6"
	if s.Addr().Unmap().Is4() && d.Addr().Unmap().Is4() {
		proto = "TCP4"
		s = netip.AddrPortFrom(s.Addr().Unmap(), s.Port())
		d = netip.AddrPortFrom(d.Addr().Unmap(), d.Port())
	} else {
		s = netip.AddrPortFrom(netip.AddrFrom16(s.Addr().As16()), s.Port())
		d = netip.AddrPortFrom(netip.AddrFrom16(d.Addr().As16()), d.Port())
	}
	b = append(b, "PROXY "+proto+" "...)
	b = s.Addr().AppendTo(b)
	b = append(b, ' ')
	b = d.Addr().AppendTo(b)
	b = fmt.Appendf(b, " %d %d\r\n", s.Port(), d.Port())
	return b
}
