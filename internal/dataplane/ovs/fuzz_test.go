package ovs

import (
	"encoding/json"
	"strings"
	"testing"
)

// nonBlankLines is the most a parser may count or produce per line.
func nonBlankLines(s string) int {
	n := 0
	for l := range strings.Lines(s) {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

func FuzzParsePMDStats(f *testing.F) {
	for _, name := range []string{"pmd-stats-show.txt", "pmd-stats-show-ovs2.6.txt"} {
		f.Add(readTestdata(f, name))
	}
	f.Add("pmd thread numa_id 0 core_id 1:\n  emc hits: 1e400\n  idle cycles: -5 (nan%)\nmain thread:\n")
	f.Add("pmd thread numa_id core_id:\n  megaflow hits: 3 (\n")
	f.Fuzz(func(t *testing.T, text string) {
		checkPMDReport(t, text, ParsePMDStats(text))
	})
}

func FuzzParsePMDPerf(f *testing.F) {
	f.Add(readTestdata(f, "pmd-perf-show.txt"))
	f.Add("Measurement duration: x s\n\npmd thread numa_id 0 core_id 1:\n  Rx packets: 10 (5 Kpps, 7 cycles/pkt, 1 cycles/pkt)\n  - Upcalls: 1 ( , us/upcall)\n")
	f.Add("  Datapath passes: 5 (1.00 passes/pkt)\n  Rx packets: 10\n")
	f.Fuzz(func(t *testing.T, text string) {
		checkPMDReport(t, text, ParsePMDStats(text))
	})
}

func checkPMDReport(t *testing.T, text string, r PMDReport) {
	lines := nonBlankLines(text)
	if r.Unknown > lines || len(r.Threads) > lines {
		t.Fatalf("%d unknown lines and %d threads from %d lines", r.Unknown, len(r.Threads), lines)
	}
	for _, th := range r.Threads {
		if !th.Main && th.CoreID == "" {
			t.Fatalf("PMD thread without a core id: %+v", th)
		}
	}
}

func FuzzParseRxqShow(f *testing.F) {
	for _, name := range []string{"pmd-rxq-show.txt", "pmd-rxq-show-warmup.txt"} {
		f.Add(readTestdata(f, name))
	}
	f.Add("pmd thread numa_id 0 core_id 2:\n port: queue-id: -1 pmd usage: -3 %\n overhead: 1e309 %\n isolated : maybe\n")
	f.Fuzz(func(t *testing.T, text string) {
		r := ParseRxqShow(text)
		lines := nonBlankLines(text)
		queues := 0
		for _, th := range r.Threads {
			queues += len(th.Queues)
			for _, q := range th.Queues {
				if q.Port == "" || q.Queue < 0 {
					t.Fatalf("queue without port or with negative id: %+v", q)
				}
				if q.Usage != nil && *q.Usage < 0 {
					t.Fatalf("negative usage %v", *q.Usage)
				}
			}
		}
		if r.Unknown+queues+len(r.Threads) > lines {
			t.Fatalf("%d unknown, %d queues, %d threads from %d lines", r.Unknown, queues, len(r.Threads), lines)
		}
	})
}

func FuzzDecodeInterfaces(f *testing.F) {
	var reply struct {
		Result json.RawMessage `json:"result"`
	}
	json.Unmarshal([]byte(readTestdata(f, "ovsdb-interface-reply.json")), &reply)
	f.Add([]byte(reply.Result))
	f.Add([]byte(`[{"rows":[{"name":"x","ofport":["set",[1,2]],"statistics":["map",[["a",1],["b"]]]}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ifs, err := decodeInterfaces(data)
		if err != nil {
			return
		}
		for _, it := range ifs {
			if it.Name == "" {
				t.Fatal("interface without a name accepted")
			}
		}
	})
}
