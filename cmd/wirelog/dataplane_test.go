package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDataplaneCommandServes runs `wirelog dataplane` as a user would on a
// node without DPDK or OVS: /healthz answers, /metrics reports the DPDK
// collector up with the --node label, and cancelling stops it cleanly.
func TestDataplaneCommandServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDataplane(ctx, []string{"--listen", addr, "--node", "node-7",
			"--dpdk-runtime-dir", t.TempDir(), "--collector.ovs=false", "--scrape-timeout", "2s"})
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get("/healthz"); code == 200 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("dataplane exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz not answering after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, `wirelog_dataplane_collector_success{collector="dpdk",node="node-7"} 1`) {
		t.Errorf("/metrics %d lacks the dpdk collector up with node label:\n%s", code, body)
	}
	if strings.Contains(body, `collector="ovs"`) {
		t.Error("--collector.ovs=false still runs the ovs collector")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dataplane returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dataplane did not stop after cancel")
	}
}

func TestDataplaneFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--scrape-timeout", "0s"},
		{"--dpdk-xstats", "("},
		{"--no-such-flag"},
	} {
		err := runDataplane(context.Background(), args)
		if !errors.Is(err, errUsage) {
			t.Errorf("runDataplane(%q) = %v, want a usage error", args, err)
		}
	}
	if err := runDataplane(context.Background(), []string{"--listen", "256.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Errorf("bad --listen: err = %v, want one naming --listen", err)
	}
}
