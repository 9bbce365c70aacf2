// Package freeport hands tests and benchmarks a loopback TCP port that was
// free a moment ago, for the real servers they start (Kafka, Prometheus,
// Jaeger, VictoriaLogs, wirelog itself). The port is closed before it is
// returned, so another process could take it first; the servers started
// here fail loudly on a taken port, which is rare enough on loopback.
package freeport

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// Get returns a free loopback TCP port, for callers without a testing.TB
// (a TestMain).
func Get() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is Get, failing the test on error.
func Port(t testing.TB) int {
	t.Helper()
	p, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Addr is "127.0.0.1:<Port>".
func Addr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(Port(t))
}
