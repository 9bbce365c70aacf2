package ovs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func thread(t *testing.T, r PMDReport, main bool, core string) PMDThread {
	t.Helper()
	for _, th := range r.Threads {
		if th.Main == main && th.CoreID == core {
			return th
		}
	}
	t.Fatalf("no thread main=%v core=%q in %+v", main, core, r.Threads)
	return PMDThread{}
}

// TestParsePMDStatsShow31 reads pmd-stats-show as captured from OVS 3.1
// (Debian 12's ovs-vswitchd-dpdk) forwarding between two net_null ports.
func TestParsePMDStatsShow31(t *testing.T) {
	r := ParsePMDStats(readTestdata(t, "pmd-stats-show.txt"))
	if r.Unknown != 0 {
		t.Errorf("%d unknown lines in OVS 3.1 output", r.Unknown)
	}
	if len(r.Threads) != 2 {
		t.Fatalf("%d threads, want the PMD and the main thread", len(r.Threads))
	}
	pmd := thread(t, r, false, "1")
	if pmd.NUMAID != "0" {
		t.Errorf("numa_id = %q", pmd.NUMAID)
	}
	want := map[Stat]float64{
		StatRxPackets: 822629920, StatRecirculations: 0, StatPassesPerPacket: 1, StatEMCHits: 822621760,
		StatMegaflowHits: 138, StatLookupsPerMegaflow: 1, StatUpcalls: 2, StatLostUpcalls: 7988,
		StatPacketsPerBatch: 32, StatIdleCycles: 0, StatProcessingCycles: 151888906412,
		StatCyclesPerPacket: 184.64, StatProcCyclesPerPacket: 184.64, StatSMCHits: 0, StatPHWOLHits: 0,
	}
	for s, v := range want {
		if got, ok := pmd.Stats[s]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", s, got, ok, v)
		}
	}
	main := thread(t, r, true, "")
	if _, ok := main.Stats[StatIdleCycles]; ok {
		t.Error("main thread has cycle figures; OVS prints none for it")
	}
	if v := main.Stats[StatRxPackets]; v != 0 {
		t.Errorf("main thread rx = %v", v)
	}
}

func TestParsePMDPerfShow31(t *testing.T) {
	r := ParsePMDStats(readTestdata(t, "pmd-perf-show.txt"))
	if r.Unknown != 0 {
		t.Errorf("%d unknown lines in OVS 3.1 perf output", r.Unknown)
	}
	if r.MeasurementSeconds != 65.389 {
		t.Errorf("measurement = %v", r.MeasurementSeconds)
	}
	pmd := thread(t, r, false, "1")
	want := map[Stat]float64{
		StatIterations: 12861977, StatUsedCycles: 151955815634, StatIdleIterations: 0, StatBusyIterations: 12861977,
		StatSleepIterations: 0, StatSleepSeconds: 0, StatRxPackets: 822829216, StatCyclesPerPacket: 185,
		StatDatapathPasses: 822829216, StatPassesPerPacket: 1, StatEMCHits: 822821056, StatMegaflowHits: 138,
		StatLookupsPerMegaflow: 1, StatUpcalls: 2, StatSecondsPerUpcall: 0, StatLostUpcalls: 7988,
		StatTxPackets: 822441472, StatTxBatches: 25701296, StatPacketsPerBatch: 32, StatRecirculations: 0,
	}
	for s, v := range want {
		if got, ok := pmd.Stats[s]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", s, got, ok, v)
		}
	}
}

// TestParsePMDStatsOldFormat reads the pre-2.9 layout ("polling cycles",
// "miss", "lost", no space after the colon).
func TestParsePMDStatsOldFormat(t *testing.T) {
	r := ParsePMDStats(readTestdata(t, "pmd-stats-show-ovs2.6.txt"))
	if r.Unknown != 0 {
		t.Errorf("%d unknown lines", r.Unknown)
	}
	pmd := thread(t, r, false, "22")
	for s, v := range map[Stat]float64{StatEMCHits: 1746, StatMegaflowHits: 5, StatUpcalls: 2, StatLostUpcalls: 1,
		StatIdleCycles: 4948, StatProcessingCycles: 14220, StatCyclesPerPacket: 11.01} {
		if got := pmd.Stats[s]; got != v {
			t.Errorf("%s = %v, want %v", s, got, v)
		}
	}
	if pmd.NUMAID != "1" {
		t.Errorf("numa = %q", pmd.NUMAID)
	}
}

// TestParsePMDStatsUnknownLines: lines a future OVS may add are counted,
// and the lines around them are still read.
func TestParsePMDStatsUnknownLines(t *testing.T) {
	text := "Datapath: netdev@ovs-netdev\n" + strings.Replace(readTestdata(t, "pmd-stats-show.txt"),
		"  emc hits:", "  quantum cache hits: 12 (0.1%)\n  a line without colon\n  emc hits:", 1) +
		"pmd thread numa_id x core_id y:\n  packets received: 5\n"
	r := ParsePMDStats(text)
	// The datapath line, the quantum line, the line without a colon, the
	// unreadable header and the line under it.
	if r.Unknown != 5 {
		t.Errorf("unknown = %d, want 5", r.Unknown)
	}
	if got := thread(t, r, true, "").Stats[StatRxPackets]; got != 0 {
		t.Errorf("main thread rx = %v: a line under an unreadable header was given to the thread before it", got)
	}
	pmd := thread(t, r, false, "1")
	if pmd.Stats[StatEMCHits] != 822621760 {
		t.Error("known line after unknown ones not read")
	}
	if len(r.Threads) != 2 {
		t.Errorf("%d threads; a malformed header must not start a thread", len(r.Threads))
	}
}

func TestParseRxqShow(t *testing.T) {
	r := ParseRxqShow(readTestdata(t, "pmd-rxq-show.txt"))
	if r.Unknown != 0 {
		t.Errorf("%d unknown lines", r.Unknown)
	}
	if len(r.Threads) != 1 {
		t.Fatalf("%d threads", len(r.Threads))
	}
	th := r.Threads[0]
	if th.NUMAID != "0" || th.CoreID != "1" || th.Isolated == nil || *th.Isolated {
		t.Errorf("thread header/isolated wrong: %+v", th)
	}
	if th.Overhead == nil || *th.Overhead != 0.06 {
		t.Errorf("overhead = %v", th.Overhead)
	}
	if len(th.Queues) != 2 {
		t.Fatalf("%d queues", len(th.Queues))
	}
	for i, want := range []struct {
		port  string
		usage float64
	}{{"p0", 0.44}, {"p1", 0.48}} {
		q := th.Queues[i]
		if q.Port != want.port || q.Queue != 0 || q.Usage == nil || *q.Usage != want.usage || q.Enabled == nil || !*q.Enabled {
			t.Errorf("queue %d = %+v (usage %v), want %s q0 %v enabled", i, q, q.Usage, want.port, want.usage)
		}
	}
}

func TestParseRxqShowNotAvailable(t *testing.T) {
	r := ParseRxqShow(readTestdata(t, "pmd-rxq-show-warmup.txt"))
	if r.Unknown != 0 {
		t.Errorf("%d unknown lines", r.Unknown)
	}
	th := r.Threads[0]
	if th.Overhead != nil {
		t.Error("overhead NOT AVAIL read as a number")
	}
	for _, q := range th.Queues {
		if q.Usage != nil {
			t.Errorf("usage NOT AVAIL read as %v", *q.Usage)
		}
	}
}

func TestParseRxqShowOlderAndUnknown(t *testing.T) {
	text := "pmd thread numa_id 0 core_id 2:\n\tisolated : true\n\tport: dpdk0\tqueue-id: 3\tpmd usage: 7 %\n" +
		"\tport: vhu1 queue-id:\n\tpriority: high\n"
	r := ParseRxqShow(text)
	if r.Unknown != 2 {
		t.Errorf("unknown = %d, want 2 (the queue line without id, the priority line)", r.Unknown)
	}
	q := r.Threads[0].Queues[0]
	if q.Port != "dpdk0" || q.Queue != 3 || q.Usage == nil || *q.Usage != 0.07 || q.Enabled != nil {
		t.Errorf("queue = %+v", q)
	}
	if !*r.Threads[0].Isolated {
		t.Error("isolated true not read")
	}
}

func TestDecodeInterfaces(t *testing.T) {
	var reply struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(readTestdata(t, "ovsdb-interface-reply.json")), &reply); err != nil {
		t.Fatal(err)
	}
	ifs, err := decodeInterfaces(reply.Result)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Interface{}
	for _, it := range ifs {
		byName[it.Name] = it
	}
	p0, ok := byName["p0"]
	if !ok || p0.Type != "dpdk" || p0.OFPort == nil || *p0.OFPort != 1 {
		t.Fatalf("p0 = %+v", p0)
	}
	if p0.Statistics["rx_packets"] != 410589440 || p0.Statistics["tx_q1_packets"] != 410226848 {
		t.Errorf("p0 statistics = %v", p0.Statistics)
	}
	if br := byName["br0"]; br.Type != "internal" || *br.OFPort != 65534 {
		t.Errorf("br0 = %+v", br)
	}
}

func TestDecodeInterfacesBadShapes(t *testing.T) {
	for _, res := range []string{
		`{}`, `[]`, `[{"rows":[{"statistics":["map",[]]}]}]`,
		`[{"rows":[{"name":"a","statistics":["set",[]]}]}]`,
		`[{"rows":[{"name":"a","statistics":["map",[["rx", "x"]]]}]}]`,
		`[{"error":"permission error","details":"no"}]`,
	} {
		if _, err := decodeInterfaces(json.RawMessage(res)); err == nil {
			t.Errorf("decodeInterfaces(%s) accepted", res)
		}
	}
	ifs, err := decodeInterfaces(json.RawMessage(`[{"rows":[{"name":"new","ofport":["set",[]],"link_state":["set",[]]}]}]`))
	if err != nil || ifs[0].OFPort != nil || ifs[0].LinkState != "" {
		t.Errorf("an interface not yet configured = %+v, %v", ifs, err)
	}
}
