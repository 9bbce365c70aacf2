package sysfstest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	v1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Kubelet serves the kubelet's pod-resources v1 API (the real generated
// server) on a unix socket, for tests of the pod mapping. The kubelet
// itself cannot run on a test machine.
type Kubelet struct {
	v1.UnimplementedPodResourcesListerServer
	Socket   string
	Pods     []*v1.PodResources
	Alloc    *v1.AllocatableResourcesResponse
	Accepted atomic.Int64 // connections accepted: the agent should keep one
	Lists    atomic.Int64
}

// StartKubelet serves pods on a fresh socket until the test ends.
func StartKubelet(tb testing.TB, pods []*v1.PodResources, alloc *v1.AllocatableResourcesResponse) *Kubelet {
	tb.Helper()
	dir, err := os.MkdirTemp("", "kubelet") // short: sun_path is 108 bytes
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	k := &Kubelet{Socket: filepath.Join(dir, "kubelet.sock"), Pods: pods, Alloc: alloc}
	ln, err := net.Listen("unix", k.Socket)
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	v1.RegisterPodResourcesListerServer(srv, k)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(countingListener{ln, &k.Accepted}) }()
	tb.Cleanup(func() { srv.Stop(); <-done })
	return k
}

// List implements v1.PodResourcesListerServer.
func (k *Kubelet) List(context.Context, *v1.ListPodResourcesRequest) (*v1.ListPodResourcesResponse, error) {
	k.Lists.Add(1)
	return &v1.ListPodResourcesResponse{PodResources: k.Pods}, nil
}

// GetAllocatableResources implements v1.PodResourcesListerServer.
func (k *Kubelet) GetAllocatableResources(context.Context, *v1.AllocatableResourcesRequest) (*v1.AllocatableResourcesResponse, error) {
	if k.Alloc == nil {
		return &v1.AllocatableResourcesResponse{}, nil
	}
	return k.Alloc, nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
