// Package podresources asks the kubelet which pod holds which device (SR-IOV
// VF by PCI address) and which exclusive CPUs, over the kubelet's
// pod-resources v1 gRPC API, and exports the answer as info metrics that
// PromQL joins with the VF and CPU metrics.
package podresources

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	v1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Defaults.
const (
	// DefaultSocket is the kubelet's pod-resources endpoint.
	DefaultSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	// DefaultCallTimeout bounds one List or GetAllocatableResources call;
	// the kubelet answers from memory in milliseconds.
	DefaultCallTimeout = 3 * time.Second
	// maxMsgSize is the kubelet's own client limit for these replies
	// (k8s.io/kubernetes/pkg/kubelet/apis/podresources.DefaultMaxMsgSize):
	// a node with hundreds of pods exceeds gRPC's 4 MiB default.
	maxMsgSize = 16 << 20
	// reconnectMaxDelay caps the back-off between reconnect attempts after
	// the kubelet restarts, so the pod mapping is back within one or two
	// scrapes rather than gRPC's default two minutes.
	reconnectMaxDelay = 5 * time.Second
)

// ErrUnavailable marks a kubelet that does not answer on the socket: it is
// restarting, the socket path is wrong (--podresources-socket), or the
// agent lacks the host mount of /var/lib/kubelet/pod-resources.
var ErrUnavailable = errors.New("kubelet pod-resources API unavailable")

// Client is one kept-alive connection to the kubelet's pod-resources API,
// shared by every scrape. gRPC re-establishes it when the kubelet restarts.
type Client struct {
	socket  string
	timeout time.Duration
	conn    *grpc.ClientConn
	api     v1.PodResourcesListerClient
}

// NewClient prepares a connection to the socket; it connects on first use,
// so an agent starts even while the kubelet is down.
func NewClient(socket string, callTimeout time.Duration) (*Client, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	if callTimeout <= 0 {
		callTimeout = DefaultCallTimeout
	}
	abs, err := filepath.Abs(socket)
	if err != nil {
		return nil, fmt.Errorf("pod-resources socket %q: %w", socket, err)
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = reconnectMaxDelay
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()), // a root-owned unix socket, as the kubelet serves it
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: callTimeout}),
	)
	if err != nil {
		return nil, fmt.Errorf("pod-resources socket %s: %w", abs, err)
	}
	return &Client{socket: abs, timeout: callTimeout, conn: conn, api: v1.NewPodResourcesListerClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// List returns the devices, CPUs and memory of every pod on the node.
func (c *Client) List(ctx context.Context) ([]*v1.PodResources, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.api.List(ctx, &v1.ListPodResourcesRequest{})
	if err != nil {
		return nil, c.wrap("List", err)
	}
	return resp.GetPodResources(), nil
}

// Allocatable returns what the node offers to pods. ok is false when the
// kubelet predates GetAllocatableResources (Kubernetes < 1.23, or the
// KubeletPodResourcesGetAllocatable feature gate off).
func (c *Client) Allocatable(ctx context.Context) (resp *v1.AllocatableResourcesResponse, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err = c.api.GetAllocatableResources(ctx, &v1.AllocatableResourcesRequest{})
	if status.Code(err) == codes.Unimplemented {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, c.wrap("GetAllocatableResources", err)
	}
	return resp, true, nil
}

func (c *Client) wrap(call string, err error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		// Do not wait out the back-off: the next scrape tries again at once.
		c.conn.ResetConnectBackoff()
		return fmt.Errorf("%w: %s on %s: %v", ErrUnavailable, call, c.socket, err)
	}
	return fmt.Errorf("kubelet pod-resources %s on %s: %w", call, c.socket, err)
}
