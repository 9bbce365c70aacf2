package ovs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxMessage caps one JSON-RPC message read from OVS. pmd-rxq-show on a
// node with thousands of queues is tens of kilobytes; this leaves room
// while keeping a runaway peer from filling memory.
const maxMessage = 16 << 20

// ErrProtocol means the peer did not speak JSON-RPC as OVS does: the
// socket may belong to something else, or a message exceeded 16 MiB.
var ErrProtocol = errors.New("ovs: json-rpc protocol error")

// rpcConn is a JSON-RPC 1.0 connection over a unix stream socket, the
// framing OVS uses for both unixctl and OVSDB: JSON values back to back,
// no length prefix or delimiter.
type rpcConn struct {
	c       net.Conn
	dec     *json.Decoder
	lim     *limitedReader
	path    string
	nextID  int
	unwatch func() bool
}

type limitedReader struct {
	c net.Conn
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("%w: message over %d bytes", ErrProtocol, maxMessage)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= int64(n)
	return n, err
}

// dialRPC connects to a unix socket; ctx bounds the connect and every call.
func dialRPC(ctx context.Context, path string) (*rpcConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	lim := &limitedReader{c: c}
	rc := &rpcConn{c: c, lim: lim, dec: json.NewDecoder(lim), path: path}
	rc.unwatch = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return rc, nil
}

func (rc *rpcConn) Close() error {
	rc.unwatch()
	return rc.c.Close()
}

type rpcRequest struct {
	Method string `json:"method"`
	Params any    `json:"params"`
	ID     any    `json:"id"`
}

type rpcMessage struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// call sends one request and returns its result, answering the echo
// requests OVSDB may send in between (its inactivity probe).
func (rc *rpcConn) call(method string, params any) (json.RawMessage, error) {
	rc.nextID++
	id := rc.nextID
	b, err := json.Marshal(rpcRequest{Method: method, Params: params, ID: id})
	if err != nil {
		return nil, err
	}
	if _, err := rc.c.Write(b); err != nil {
		return nil, fmt.Errorf("send %s to %s: %w", method, rc.path, err)
	}
	for {
		rc.lim.n = maxMessage
		var m rpcMessage
		if err := rc.dec.Decode(&m); err != nil {
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				err = fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			return nil, fmt.Errorf("read reply to %s from %s: %w", method, rc.path, err)
		}
		if m.Method == "echo" {
			reply, _ := json.Marshal(map[string]any{"result": m.Params, "error": nil, "id": m.ID})
			if _, err := rc.c.Write(reply); err != nil {
				return nil, fmt.Errorf("answer echo from %s: %w", rc.path, err)
			}
			continue
		}
		if m.Method != "" {
			continue // a notification; nothing asked for here
		}
		var gotID int
		if json.Unmarshal(m.ID, &gotID) != nil || gotID != id {
			return nil, fmt.Errorf("%w: reply id %s from %s, want %d", ErrProtocol, m.ID, rc.path, id)
		}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			return nil, &RPCError{Method: method, Path: rc.path, Detail: errorText(m.Error)}
		}
		return m.Result, nil
	}
}

// RPCError is an error answer from ovs-vswitchd or ovsdb-server: the
// request arrived and was refused (unknown command, no netdev datapath).
type RPCError struct {
	Method string
	Path   string
	Detail string
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("%s on %s answered: %s", e.Method, e.Path, e.Detail)
}

// errorText renders an error member, a string for unixctl and an object
// {"error": ..., "details": ...} for OVSDB.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return trimNL(s)
	}
	var o struct {
		Error   string `json:"error"`
		Details string `json:"details"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Error != "" {
		if o.Details != "" {
			return o.Error + ": " + o.Details
		}
		return o.Error
	}
	return string(raw)
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
