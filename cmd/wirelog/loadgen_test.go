package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// TestLoadgenAgainstRun runs the loadgen binary against a real `wirelog run`
// and checks the JSON report a user scripts against, and that the events it
// reports acknowledged are what the store holds.
func TestLoadgenAgainstRun(t *testing.T) {
	n := startNode(t, t.TempDir())
	out, err := exec.Command(wirelogBin, "loadgen", "--target", n.URL, "--count", "20000", "--duration", "60s",
		"--concurrency", "4", "--batch", "250", "--json", "--quiet").Output()
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	var rep struct {
		EventsPerSecond float64            `json:"events_per_second"`
		MBPerSecond     float64            `json:"mb_per_second"`
		EventsAcked     int64              `json:"events_acked"`
		Latency         map[string]float64 `json:"latency_ms"`
		Errors          map[string]int64   `json:"errors"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	if rep.EventsAcked != 20000 || rep.EventsPerSecond <= 0 || rep.MBPerSecond <= 0 || len(rep.Errors) != 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, q := range []string{"p50", "p99", "p999"} {
		if rep.Latency[q] <= 0 {
			t.Fatalf("latency %s missing: %v", q, rep.Latency)
		}
	}
	if rep.Latency["p50"] > rep.Latency["p99"] || rep.Latency["p99"] > rep.Latency["p999"] {
		t.Fatalf("latency quantiles out of order: %v", rep.Latency)
	}
	eventually(t, time.Minute, func() error {
		if got := statsEvents(n); got != 20000 {
			return fmt.Errorf("stored %v of 20000 acknowledged events", got)
		}
		return nil
	})
}
