package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"net"
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
