package xdp

import (
	"bytes"
	"testing"
)

// frame builds an Ethernet + IPv4 + UDP frame around payload, with the UDP
// length field udpLen and pad bytes of Ethernet padding after it.
func frame(payload []byte, udpLen, pad int) []byte {
	f := make([]byte, HeaderLen, HeaderLen+len(payload)+pad)
	f[12], f[13] = 0x08, 0x00
	f[14] = 0x45
	f[14+9] = 17
	f[14+20+4], f[14+20+5] = byte(udpLen>>8), byte(udpLen)
	f = append(f, payload...)
	return append(f, make([]byte, pad)...)
}

func TestUDPPayload(t *testing.T) {
	msg := []byte("<14>1 - h a - - - hi")
	for _, c := range []struct {
		name  string
		frame []byte
		want  []byte
		ok    bool
	}{
		{"exact", frame(msg, 8+len(msg), 0), msg, true},
		{"ethernet padding is cut off", frame([]byte("x"), 9, 17), []byte("x"), true},
		{"empty datagram", frame(nil, 8, 0), []byte{}, true},
		{"UDP length past the frame", frame(msg, 8+len(msg)+1, 0), nil, false},
		{"UDP length under the header", frame(msg, 7, 0), nil, false},
		{"shorter than the headers", make([]byte, HeaderLen-1), nil, false},
	} {
		got, ok := UDPPayload(c.frame)
		if ok != c.ok || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// FuzzUDPPayload: any frame gives either false or a payload inside the
// frame that its UDP length field describes.
func FuzzUDPPayload(f *testing.F) {
	f.Add(frame([]byte("<13>hello"), 17, 0))
	f.Add(frame([]byte("x"), 9, 20))
	f.Add(frame(nil, 0xffff, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := UDPPayload(b)
		if !ok {
			return
		}
		n := int(b[38])<<8 | int(b[39])
		if len(p) != n-8 || !bytes.Equal(p, b[HeaderLen:HeaderLen+len(p)]) {
			t.Fatalf("payload of %d bytes for UDP length %d in a %d-byte frame", len(p), n, len(b))
		}
	})
}
