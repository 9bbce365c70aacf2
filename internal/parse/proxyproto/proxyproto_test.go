package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

func TestReadV2(t *testing.T) {
	src := &net.TCPAddr{IP: net.ParseIP("198.18.0.7"), Port: 40123}
	dst := &net.TCPAddr{IP: net.ParseIP("198.18.0.1"), Port: 6514}
	stream := append(AppendV2(nil, src, dst), "rest of stream"...)
	r := bytes.NewReader(stream)
	h, err := ReadV2(r)
	if err != nil {
		t.Fatal(err)
	}
	if h.Local || h.Source.String() != "198.18.0.7:40123" || h.Dest.String() != "198.18.0.1:6514" {
		t.Fatalf("got %+v", h)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest of stream" {
		t.Fatalf("ReadV2 read past the header: %q left", rest)
	}
	src6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 1}
	h, err = ReadV2(bytes.NewReader(AppendV2(nil, src6, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 2})))
	if err != nil || h.Source.String() != "[2001:db8::7]:1" {
		t.Fatalf("IPv6: %+v %v", h, err)
	}
	local := append(append([]byte(nil), signature...), 0x20, 0x00, 0, 0)
	if h, err := ReadV2(bytes.NewReader(local)); err != nil || !h.Local || h.Source != nil {
		t.Fatalf("LOCAL: %+v %v", h, err)
	}
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"syslog directly": {[]byte("<34>1 2026-01-01T00:00:00Z h a - - - hi\n"), ErrNotProxy},
		"v1 text":         {[]byte("PROXY TCP4 198.18.0.7 198.18.0.1 1 2\r\n"), ErrNotProxy},
		"short":           {[]byte("<1>"), ErrNotProxy},
		"truncated sig":   {signature[:8], ErrMalformed},
		"version 1":       {append(append([]byte(nil), signature...), 0x11, 0x11, 0, 12), ErrMalformed},
		"too long":        {append(append([]byte(nil), signature...), 0x21, 0x11, 0xff, 0xff), ErrMalformed},
		"short IPv4":      {append(append([]byte(nil), signature...), 0x21, 0x11, 0, 4, 1, 2, 3, 4), ErrMalformed},
		"truncated body":  {append(append([]byte(nil), signature...), 0x21, 0x11, 0, 12, 1), ErrMalformed},
		"unknown command": {append(append([]byte(nil), signature...), 0x25, 0x11, 0, 0), ErrMalformed},
		"unknown family":  {append(append([]byte(nil), signature...), 0x21, 0x51, 0, 0), ErrMalformed},
		"short IPv6":      {append(append([]byte(nil), signature...), 0x21, 0x21, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), ErrMalformed},
	} {
		if _, err := ReadV2(bytes.NewReader(c.b)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// FuzzReadV2 runs its seeds (testdata/fuzz/FuzzReadV2 and the ones below)
// in go test; go test -fuzz=FuzzReadV2 explores further. The invariants:
// no panic, never more than 16+MaxHeader bytes read, an address only for
// PROXY headers.
func FuzzReadV2(f *testing.F) {
	f.Add(AppendV2(nil, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 9}, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 6514}))
	f.Add(AppendV2(nil, &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 9}, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 6514}))
	f.Add(append(append([]byte(nil), signature...), 0x20, 0x00, 0, 0))
	f.Add([]byte("<34>1 - - - - - - x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := ReadV2(r)
		if read := len(b) - r.Len(); read > 16+MaxHeader {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil && (h.Source != nil || h.Local) {
			t.Fatalf("error %v with a header %+v", err, h)
		}
		if h.Local && h.Source != nil {
			t.Fatal("LOCAL with an address")
		}
	})
}

func TestReadV1(t *testing.T) {
	for _, c := range []struct{ line, src, dst string }{
		{"PROXY TCP4 198.18.0.7 198.18.0.1 40123 6514\r\n", "198.18.0.7:40123", "198.18.0.1:6514"},
		{"PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n", "[2001:db8::7]:1", "[2001:db8::1]:65535"},
		{"PROXY TCP6 ::ffff:198.18.0.7 ::ffff:198.18.0.1 0 2\r\n", "198.18.0.7:0", "198.18.0.1:2"}, // net.IP prints 4-in-6 as IPv4
		// The specification's longest line: 107 bytes.
		{"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
	} {
		r := bytes.NewReader([]byte(c.line + "<34>1 rest"))
		h, err := Read(r)
		if err != nil || h.Version != 1 || h.Source.String() != c.src || h.Dest.String() != c.dst {
			t.Errorf("%q: %+v %v, want %s → %s", c.line, h, err, c.src, c.dst)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "<34>1 rest" {
			t.Errorf("%q: Read took the stream's bytes, %q left", c.line, rest)
		}
	}
	// UNKNOWN: no address (the connection's stays), whatever follows.
	if h, err := Read(bytes.NewReader([]byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"))); err != nil || h.Source != nil {
		t.Errorf("UNKNOWN: %+v %v", h, err)
	}
	if h, err := Read(bytes.NewReader([]byte("PROXY UNKNOWN\r\n"))); err != nil || h.Source != nil {
		t.Errorf("bare UNKNOWN: %+v %v", h, err)
	}
	// Read also takes v2.
	v2 := AppendV2(nil, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 9), Port: 9}, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 6514})
	if h, err := Read(bytes.NewReader(v2)); err != nil || h.Version != 2 || h.Source.String() != "198.18.0.9:9" {
		t.Errorf("v2 through Read: %+v %v", h, err)
	}
	for name, c := range map[string]struct {
		b    string
		want error
	}{
		"syslog directly": {"<34>1 2026-01-01T00:00:00Z h a - - - hi\n", ErrNotProxy},
		"nothing":         {"", ErrNotProxy},
		"short":           {"PRO", ErrMalformed},
		"no CRLF":         {"PROXY TCP4 198.18.0.7 198.18.0.1 1 2\n", ErrMalformed},
		"cut short":       {"PROXY TCP4 198.18.0.7 198.18.0.1 1 2", ErrMalformed},
		"too long":        {"PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n", ErrMalformed},
		"protocol":        {"PROXY UDP4 198.18.0.7 198.18.0.1 1 2\r\n", ErrMalformed},
		"v6 in TCP4":      {"PROXY TCP4 2001:db8::7 198.18.0.1 1 2\r\n", ErrMalformed},
		"v4 in TCP6":      {"PROXY TCP6 198.18.0.7 2001:db8::1 1 2\r\n", ErrMalformed},
		"zone":            {"PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n", ErrMalformed},
		"port range":      {"PROXY TCP4 198.18.0.7 198.18.0.1 65536 2\r\n", ErrMalformed},
		"port sign":       {"PROXY TCP4 198.18.0.7 198.18.0.1 +1 2\r\n", ErrMalformed},
		"leading zero":    {"PROXY TCP4 198.18.0.7 198.18.0.1 01 2\r\n", ErrMalformed},
		"two spaces":      {"PROXY TCP4  198.18.0.7 198.18.0.1 1 2\r\n", ErrMalformed},
		"missing port":    {"PROXY TCP4 198.18.0.7 198.18.0.1 1\r\n", ErrMalformed},
		"lower case":      {"proxy TCP4 198.18.0.7 198.18.0.1 1 2\r\n", ErrNotProxy},
	} {
		if _, err := Read(bytes.NewReader([]byte(c.b))); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// FuzzRead runs its seeds (testdata/fuzz/FuzzRead and the ones below) in
// go test. The invariants: no panic; never more than a v1 line or a v2
// header read; an address only on success; a v1 header read back from
// AppendV1 of what it said is the same header.
func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.18.0.7 198.18.0.1 40123 6514\r\n<34>1 x"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(AppendV2(nil, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 9}, &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 6514}))
	f.Add([]byte("<34>1 - - - - - - x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := Read(r)
		read := len(b) - r.Len()
		if read > 16+MaxHeader || (h.Version == 1 && read > v1Max) {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil {
			if h.Source != nil || h.Local {
				t.Fatalf("error %v with a header %+v", err, h)
			}
			return
		}
		if h.Version == 1 && h.Source != nil {
			again, err := Read(bytes.NewReader(AppendV1(nil, h.Source, h.Dest)))
			if err != nil || again.Source.String() != h.Source.String() || again.Dest.String() != h.Dest.String() {
				t.Fatalf("%q → %+v → %q → %+v %v", b[:read], h, AppendV1(nil, h.Source, h.Dest), again, err)
			}
		}
	})
}
