// Package dpdk reads the counters of running DPDK processes through their
// telemetry v2 sockets (SOCK_SEQPACKET, one JSON document per message) and
// exports them as Prometheus metrics.
//
// The protocol: on connect the process sends a greeting
// {"version":"DPDK 22.11.11","pid":1234,"max_output_len":16384}; each
// command after that ("/ethdev/stats,0") is one message and is answered by
// one message {"/ethdev/stats":{...}}. An unknown command, or a known one
// with a bad parameter, is answered with a null value.
package dpdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Protocol limits.
const (
	// minReplyBuffer is the receive buffer used when the greeting announces
	// a smaller (or no) max_output_len; DPDK 22.11 announces 16384.
	minReplyBuffer = 16 << 10
	// maxReplyBuffer caps what a greeting may make us allocate per
	// connection, so a hostile or broken socket cannot ask for gigabytes.
	maxReplyBuffer = 4 << 20
)

// Sentinel errors of the telemetry client; each is wrapped with the socket
// path and command.
var (
	// ErrProtocol means the socket answered with something that is not the
	// telemetry v2 protocol: not JSON, not an object keyed by the command,
	// or a greeting without a pid. The process may not be DPDK, or may be a
	// DPDK version this agent does not understand.
	ErrProtocol = errors.New("dpdk telemetry: protocol error")
	// ErrTruncated means a reply was larger than the buffer the greeting's
	// max_output_len announced, so the kernel cut it.
	ErrTruncated = errors.New("dpdk telemetry: reply truncated")
	// ErrNoData means the process answered null: the command does not exist
	// in this DPDK version, or its parameter (a port id) is no longer valid.
	ErrNoData = errors.New("dpdk telemetry: command unknown or parameter invalid")
)

// Greeting is the first message a telemetry v2 socket sends.
type Greeting struct {
	Version      string `json:"version"`
	PID          int    `json:"pid"`
	MaxOutputLen int    `json:"max_output_len"`
}

// Conn is one connection to a telemetry v2 socket. It is not safe for
// concurrent use: the protocol is strictly one request, one reply.
type Conn struct {
	c        *net.UnixConn
	path     string
	greeting Greeting
	buf      []byte
	unwatch  func() bool
}

// Dial connects to the telemetry socket at path and reads its greeting.
// ctx bounds the connect and every later Query on the connection.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		return nil, fmt.Errorf("connect to dpdk telemetry socket %s: %w", path, err)
	}
	c := &Conn{c: nc.(*net.UnixConn), path: path, buf: make([]byte, minReplyBuffer)}
	if err := c.watch(ctx); err != nil {
		c.Close()
		return nil, err
	}
	msg, err := c.read()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read greeting from %s: %w", path, err)
	}
	g, err := decodeGreeting(msg)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting from %s: %w", path, err)
	}
	c.greeting = g
	if n := g.MaxOutputLen + 1; n > len(c.buf) {
		// One byte over the announced size lets a reply of exactly
		// max_output_len through while a longer one still sets MSG_TRUNC.
		c.buf = make([]byte, min(n, maxReplyBuffer))
	}
	return c, nil
}

// watch makes ctx's deadline and cancellation apply to the socket: DPDK's
// telemetry thread can be starved by busy-polling lcores or be stuck, and a
// scrape must not wait for it longer than the caller allows.
func (c *Conn) watch(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.c.SetDeadline(dl); err != nil {
			return fmt.Errorf("set deadline on %s: %w", c.path, err)
		}
	}
	c.unwatch = context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// Greeting returns what the process announced on connect.
func (c *Conn) Greeting() Greeting { return c.greeting }

// Close closes the connection.
func (c *Conn) Close() error {
	if c.unwatch != nil {
		c.unwatch()
	}
	return c.c.Close()
}

// Query sends one command ("/ethdev/stats,0") and returns the JSON value the
// process answered under the command's name. A null answer is ErrNoData.
func (c *Conn) Query(cmd string) (json.RawMessage, error) {
	res, err := c.QueryBatch([]string{cmd})
	if err != nil {
		return nil, err
	}
	if res[0] == nil {
		return nil, fmt.Errorf("%q on %s: %w", cmd, c.path, ErrNoData)
	}
	return res[0], nil
}

// maxBatch bounds one QueryBatch. Requests are a few dozen bytes; this
// many fit the socket's send buffer without blocking before any reply is
// read, while replies queue on our side.
const maxBatch = 256

// QueryBatch sends cmds back to back, then reads their replies in order:
// the telemetry thread reads one message at a time, so pipelining is safe,
// and it answers a whole batch in one scheduling instead of one per
// command. A null answer gives a nil entry; any other failure is returned.
func (c *Conn) QueryBatch(cmds []string) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(cmds))
	for start := 0; start < len(cmds); start += maxBatch {
		chunk := cmds[start:min(start+maxBatch, len(cmds))]
		for _, cmd := range chunk {
			if _, err := c.c.Write([]byte(cmd)); err != nil {
				return nil, fmt.Errorf("send %q to %s: %w", cmd, c.path, err)
			}
		}
		for _, cmd := range chunk {
			msg, err := c.read()
			if err != nil {
				return nil, fmt.Errorf("read reply to %q from %s: %w", cmd, c.path, err)
			}
			v, err := decodeReply(cmd, msg)
			if errors.Is(err, ErrNoData) {
				out = append(out, nil)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reply to %q from %s: %w", cmd, c.path, err)
			}
			// The buffer is reused by the next read.
			out = append(out, append(json.RawMessage(nil), v...))
		}
	}
	return out, nil
}

// read receives one message. SOCK_SEQPACKET keeps message boundaries, so a
// reply longer than the buffer is cut by the kernel and flagged MSG_TRUNC
// rather than spilling into the next read.
func (c *Conn) read() ([]byte, error) {
	n, _, flags, _, err := c.c.ReadMsgUnix(c.buf, nil)
	if err != nil {
		return nil, err
	}
	if flags&unix.MSG_TRUNC != 0 {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrTruncated, len(c.buf))
	}
	if n == 0 {
		// A zero-length message on SOCK_SEQPACKET is the peer closing.
		return nil, fmt.Errorf("%w: connection closed by the process", ErrProtocol)
	}
	return c.buf[:n], nil
}

func decodeGreeting(msg []byte) (Greeting, error) {
	var g Greeting
	if err := json.Unmarshal(msg, &g); err != nil {
		return g, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if g.PID <= 0 {
		return g, fmt.Errorf("%w: greeting has no pid", ErrProtocol)
	}
	if g.MaxOutputLen < 0 {
		return g, fmt.Errorf("%w: negative max_output_len %d", ErrProtocol, g.MaxOutputLen)
	}
	return g, nil
}

// decodeReply takes the value keyed by the command's name (the part before
// the first comma) out of a reply.
func decodeReply(cmd string, msg []byte) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(msg, &obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	name, _, _ := strings.Cut(cmd, ",")
	v, ok := obj[name]
	if !ok {
		return nil, fmt.Errorf("%w: reply has no %q key", ErrProtocol, name)
	}
	if len(v) == 0 || string(v) == "null" {
		return nil, ErrNoData
	}
	return v, nil
}
