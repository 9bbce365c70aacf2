package freeport

import (
	"net"
	"testing"
)

// The port handed out can be listened on, and two calls in a row do not
// hand out the same port while the first is held.
func TestPortIsFreeAndListenable(t *testing.T) {
	a := Addr(t)
	l, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("listen on the free address %s: %v", a, err)
	}
	defer l.Close()
	if b := Addr(t); b == a {
		t.Fatalf("Addr returned %s again while it is held", b)
	}
}
